// Transitional: TLS is now net/tls_context.h (contexts, reload) and
// net/tls_stream.h (the stream). net/exchange.cpp and net/worker.cpp still
// include this name; once they include the header they use, it goes.
#pragma once

#include "net/tls_context.h"
#include "net/tls_stream.h"
