#!/bin/sh
# The compose service `minio-tls`: HTTPS on :9443 in front of MinIO's HTTP for
# pgBackRest (2.45 speaks S3 over HTTPS only), run as postgres. Its
# self-signed certificate is made on first start into the volume pgbackrest-tls
# (/etc/pgbackrest/tls), which postgres and pgbackrest mount to trust it.
set -eu
tls=/etc/pgbackrest/tls
if [ ! -s "$tls/minio.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -days 3650 -subj /CN=minio-tls -addext subjectAltName=DNS:minio-tls \
    -keyout "$tls/minio.key" -out "$tls/minio.crt"
fi
cat > /tmp/stunnel.conf <<CONF
foreground = yes
pid =
[minio]
accept = 9443
connect = minio:9000
cert = $tls/minio.crt
key = $tls/minio.key
CONF
exec stunnel /tmp/stunnel.conf
