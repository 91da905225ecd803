#!/bin/sh
# DEVELOPMENT ONLY. Makes a throwaway ECDSA P-256 certificate authority and a server certificate
# for localhost (DNS:localhost, IP:127.0.0.1, IP:::1) with the openssl command line, for running
# outpostd on one machine and for the integration tests. Never use these in the field: the CA key
# sits unprotected next to the certificates, and anyone holding it can impersonate the server to
# every device that pins this CA.
#
#   certs-example/make-dev-certs.sh [--intermediate] DIR
#
# Writes into DIR (created if missing):
#   ca.pem       the dev CA certificate: the `ca` in outpostd's config, pinned by devices
#   ca.key       the dev CA private key
#   server.pem   the server certificate, signed by the CA: `cert` in outpostd's config
#   server.key   the server private key: `key` in outpostd's config
# With --intermediate, the way most real CAs issue: the root (ca.pem) signs an intermediate CA
# (intermediate.pem, intermediate.key), which signs the server certificate; server.pem then
# holds the server certificate followed by the intermediate (the chain outpostd serves).
set -eu

intermediate=
if [ "${1:-}" = --intermediate ]; then
    intermediate=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--intermediate] DIR" >&2
    exit 2
fi
dir=$1
days=${OUTPOST_DEV_CERT_DAYS:-825}
mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

root_pathlen=0
[ -z "$intermediate" ] || root_pathlen=1
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" \
    -subj "/O=Outpost development (NOT FOR PRODUCTION)/CN=Outpost dev CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:$root_pathlen" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"

# The CA that signs the server certificate: the root itself, or an intermediate under it.
signer=ca
if [ -n "$intermediate" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/intermediate.key"
    openssl req -new -key "$dir/intermediate.key" -sha256 \
        -subj "/O=Outpost development (NOT FOR PRODUCTION)/CN=Outpost dev intermediate CA" \
        -out "$tmp/intermediate.csr"
    cat > "$tmp/intermediate.ext" <<EXT
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
    openssl x509 -req -in "$tmp/intermediate.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days "$days" \
        -extfile "$tmp/intermediate.ext" -out "$dir/intermediate.pem" 2>/dev/null
    signer=intermediate
fi

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
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/$signer.pem" -CAkey "$dir/$signer.key" \
    -CAcreateserial -CAserial "$tmp/$signer.srl" -sha256 -days "$days" \
    -extfile "$tmp/server.ext" -out "$dir/server.pem" 2>/dev/null
if [ -n "$intermediate" ]; then
    cat "$dir/intermediate.pem" >> "$dir/server.pem"
    chmod 644 "$dir/intermediate.pem"
fi

chmod 644 "$dir/ca.pem" "$dir/server.pem"
echo "development certificates written to $dir (ca.pem, server.pem, server.key; NOT FOR PRODUCTION)"
