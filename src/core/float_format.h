// Number formatting shared by the text expositions.
#pragma once

#include <string>

namespace regmeter {

// Appends v as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is
// what distribution's text exposition uses (and so what its `le` label values
// look like): the shortest digits that read back as v, in exponent form when
// the exponent is < -4 or >= 6 ("0.005", "60", "1.048576e+06"). NaN, +Inf and
// -Inf as the exposition formats spell them.
// (src/core/metrics.cpp has a private copy for its `le` rewrite, to fold into this
// one when the metrics core moves to src/core/.)
void append_go_float(std::string& out, double v);

}  // namespace regmeter
