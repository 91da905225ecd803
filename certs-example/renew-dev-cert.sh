#!/bin/sh
# DEVELOPMENT ONLY. Renews the server certificate in DIR (made by make-dev-certs.sh) from the
# same CA: a new key and certificate, signed by the intermediate when DIR has one, else by the
# root; server.pem and server.key are replaced atomically (written beside, then renamed), so
# outpostd never reads half a file. Then `kill -HUP` outpostd (systemctl reload outpostd):
# new connections get the new certificate, connected devices keep theirs, and devices need
# nothing (they pin the CA). docs/operations.md, "Certificate renewal", follows this.
#
#   certs-example/renew-dev-cert.sh DIR
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
days=${OUTPOST_DEV_CERT_DAYS:-825}
signer=ca
[ -f "$dir/intermediate.key" ] && signer=intermediate
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/server.key"
openssl req -new -key "$tmp/server.key" -sha256 \
    -subj "/O=Outpost development (NOT FOR PRODUCTION)/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/$signer.pem" -CAkey "$dir/$signer.key" \
    -CAcreateserial -CAserial "$tmp/serial.srl" -sha256 -days "$days" \
    -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>/dev/null
[ "$signer" = intermediate ] && cat "$dir/intermediate.pem" >> "$tmp/server.pem"
chmod 644 "$tmp/server.pem"
# The key first: for a moment the old certificate sits with the new key, which outpostd's
# reload refuses (they do not match) rather than serving.
cp "$tmp/server.key" "$dir/server.key.new" && mv "$dir/server.key.new" "$dir/server.key"
cp "$tmp/server.pem" "$dir/server.pem.new" && mv "$dir/server.pem.new" "$dir/server.pem"
echo "server certificate in $dir renewed from its CA (NOT FOR PRODUCTION); reload outpostd"
