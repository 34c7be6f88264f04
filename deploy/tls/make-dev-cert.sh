#!/bin/sh
# Make a self-signed development certificate for 127.0.0.1 and localhost.
#   deploy/tls/make-dev-cert.sh DIR [DAYS]
# Writes DIR/cert.pem and DIR/key.pem (mode 600). Use them with
#   lightstream serve --tls-listen 127.0.0.1:8443 \
#       --tls-cert DIR/cert.pem --tls-key DIR/key.pem
# or the gateway.tls.* configuration keys. Never use it in production.
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	echo "usage: $0 DIR [DAYS]" >&2
	exit 2
fi
dir=$1
days=${2:-365}
command -v openssl >/dev/null 2>&1 || {
	echo "$0: openssl is not installed" >&2
	exit 1
}
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" -days "$days" \
	-subj "/CN=localhost/O=LightStream development" \
	-addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" \
	-addext "basicConstraints=critical,CA:FALSE" \
	-addext "keyUsage=critical,digitalSignature" \
	-addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 644 "$dir/cert.pem"
echo "$dir/cert.pem $dir/key.pem"
