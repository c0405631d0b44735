#!/usr/bin/env bash
# Generate what the loopback control plane needs, in $SHIPLOCK_KUBE_DIR/pki:
# a CA, the kube-apiserver serving certificate (127.0.0.1, localhost,
# kubernetes.default...), an admin client certificate (O=system:masters),
# the apiserver->kubelet client certificate, the node agent's serving
# certificate (127.0.0.1), the service-account key pair; and an admin
# kubeconfig with the certificates embedded, $SHIPLOCK_KUBE_DIR/kubeconfig.
# EC P-256 keys, openssl only, under a second. Existing files are kept.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
. "$HERE/env.sh"

PKI=$SHIPLOCK_KUBE_DIR/pki
mkdir -p "$PKI"
cd "$PKI"

newkey() { [[ -f $1 ]] || openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

if [[ ! -f ca.crt ]]; then
  newkey ca.key
  openssl req -x509 -new -key ca.key -subj "/CN=shiplock-kube-ca" -days 3650 -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
fi

# sign NAME SUBJECT EXTENSIONS
sign() {
  local name=$1 subj=$2 ext=$3
  [[ -f $name.crt ]] && return 0
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  printf '%b\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -days 3650 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

server_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth'
client_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'

sign apiserver "/CN=kube-apiserver" \
  "$server_ext\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=shiplock-kube-admin" "$client_ext"
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
sign kubelet "/CN=shiplock-kube-nodeagent" "$server_ext\nsubjectAltName=IP:127.0.0.1,DNS:localhost"

if [[ ! -f sa.key ]]; then
  newkey sa.key
  openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
fi

b64() { base64 -w0 < "$1"; }
cat > "$SHIPLOCK_KUBE_DIR/kubeconfig" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: shiplock-kube
  cluster:
    server: https://127.0.0.1:${SHIPLOCK_KUBE_APISERVER_PORT}
    certificate-authority-data: $(b64 ca.crt)
users:
- name: shiplock-kube-admin
  user:
    client-certificate-data: $(b64 admin.crt)
    client-key-data: $(b64 admin.key)
contexts:
- name: shiplock-kube
  context:
    cluster: shiplock-kube
    user: shiplock-kube-admin
    namespace: default
current-context: shiplock-kube
EOK
chmod 600 "$SHIPLOCK_KUBE_DIR/kubeconfig" "$PKI"/*.key
