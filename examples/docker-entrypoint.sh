#!/bin/sh
# The image's entry point (examples/Dockerfile). Inside a container the
# built-in default upstream, 127.0.0.1:5000, is the container itself, so
# running the image without saying which registry to meter is an error with
# one line saying how, not a proxy that answers 502 to everything:
#
#   docker run -e REGMETER_UPSTREAM=http://registry:5000 regmeter:latest
#   docker run regmeter:latest --listen 0.0.0.0:5080 --metrics-listen 0.0.0.0:9180 --upstream http://registry:5000
#   docker run regmeter:latest --config /etc/regmeter/regmeter.yaml     # the file names upstream:
#
# REGMETER_UPSTREAM is put before the arguments, so an --upstream among them
# still wins. --help, --version and --check-config need no upstream.
set -eu
REGMETER=/usr/local/bin/regmeter
if [ -n "${REGMETER_UPSTREAM:-}" ]; then
    exec "$REGMETER" --upstream "$REGMETER_UPSTREAM" "$@"
fi
for arg in "$@"; do
    case $arg in
        --upstream | --upstream=* | --config | --config=* | --check-config | --check-config=* | --help | --version)
            exec "$REGMETER" "$@" ;;
    esac
done
echo "regmeter: no upstream: set REGMETER_UPSTREAM (docker run -e REGMETER_UPSTREAM=http://registry:5000 ...) or pass --upstream URL" >&2
exit 2
