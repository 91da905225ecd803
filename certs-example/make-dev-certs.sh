#!/bin/sh
# DEVELOPMENT ONLY. Makes a throwaway ECDSA P-256 certificate authority and a server certificate
# for localhost (DNS:localhost, IP:127.0.0.1, IP:::1) with the openssl command line, for running
# outpostd on one machine and for the integration tests. Never use these in the field: the CA key
# sits unprotected next to the certificates, and anyone holding it can impersonate the server to
# every device that pins this CA.
#
#   certs-example/make-dev-certs.sh DIR
#
# Writes into DIR (created if missing):
#   ca.pem       the dev CA certificate: the `ca` in outpostd's config, pinned by devices
#   ca.key       the dev CA private key
#   server.pem   the server certificate, signed by the CA: `cert` in outpostd's config
#   server.key   the server private key: `key` in outpostd's config
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
days=${OUTPOST_DEV_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" \
    -subj "/O=Outpost development (NOT FOR PRODUCTION)/CN=Outpost dev CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key"
openssl req -new -key "$dir/server.key" -sha256 \
    -subj "/O=Outpost development (NOT FOR PRODUCTION)/CN=localhost" \
    -out "$tmp/server.csr"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days "$days" \
    -extfile "$tmp/server.ext" -out "$dir/server.pem" 2>/dev/null

chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "development certificates written to $dir (ca.pem, server.pem, server.key; NOT FOR PRODUCTION)"
