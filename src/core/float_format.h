// Number formatting shared by the text expositions.
#pragma once

#include <string>

namespace regmeter {

// Appends v as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is
// what distribution's text exposition uses (and so what its `le` label values
// look like): the shortest digits that read back as v, in exponent form when
// the exponent is < -4 or >= 6 ("0.005", "60", "1.048576e+06"). NaN, +Inf and
// -Inf as the exposition formats spell them.
void append_go_float(std::string& out, double v);

// In Prometheus 2.x `le` is an ordinary label: "1048576" and "1.048576e+06"
// are different series. prometheus-cpp's text serializer prints the former,
// distribution the latter, so this rewrites every `le` label value of a text
// exposition 0.0.4 with append_go_float, keeping series identical across a
// switch. Label values never contain an unescaped quote, so `{le="` and
// `,le="` can only start an `le` label.
std::string with_go_style_le(const std::string& text);

}  // namespace regmeter
