"""The nginx gateway: its configuration, rendered for given upstreams, and its process.

One template serves `atalaia up` (loopback ports), docker-compose and Kubernetes
(service names); deploy/nginx/nginx.conf and deploy/k8s/nginx.conf are renders of
it. Rate limits are per client address; the services check tokens and roles.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from atalaia.api.common.body_limits import (
    ELSEWHERE,
    MANAGEMENT,
    MIB,
    PREDICTION,
    UPLOAD,
)
from atalaia.cluster.supervisor import ProcessSpec
from atalaia.tls import MODERN_CIPHERS

SERVICES = ("training", "inference", "plot", "health")
# The training service's routes of small bodies (the elsewhere limit): incidents,
# the fleet's figures, alerting, rollouts, self-healing, the console's sign-in and
# the audit log.
TRAINING_ROUTES = (
    "incidents",
    "fleet",
    "alerts",
    "rollouts",
    "healing",
    "auth",
    "sensors",
    "reports",
    "audit",
)

HSTS_MAX_AGE_S = 365 * 86400  # browsers keep to HTTPS for this host a year
HTTPS_DEFAULT_PORT = 443


@dataclass(frozen=True, slots=True)
class GatewayTls:
    """The gateway's HTTPS side: where nginx listens, its PEM certificate and
    key, and the port clients reach it on (where plain HTTP is redirected)."""

    listen: str
    cert_file: str
    key_file: str
    public_port: int = HTTPS_DEFAULT_PORT


_TEMPLATE = """\
# The atalaia gateway. Rendered by atalaia.cluster.gateway; edit the template there.
@USER@worker_processes auto;
pid @RUNTIME@/nginx.pid;
error_log @ERROR_LOG@ warn;

events {
    worker_connections 4096;
}

http {
    default_type application/json;
    access_log @ACCESS_LOG@;
    server_tokens off;
    keepalive_timeout 65s;

    # TLS 1.2 and 1.3 (1.3 whenever the client has it), forward-secret AEAD
    # suites only; sessions resumed from a cache shared by the workers.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers @CIPHERS@;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:atalaia_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;
    client_body_temp_path @RUNTIME@/client_body;
    proxy_temp_path @RUNTIME@/proxy;
    fastcgi_temp_path @RUNTIME@/fastcgi;
    uwsgi_temp_path @RUNTIME@/uwsgi;
    scgi_temp_path @RUNTIME@/scgi;

    # Per client address: management routes are strict, prediction routes take a
    # fleet's readings (sensor gateways send from few addresses).
    limit_req_zone $binary_remote_addr zone=management:10m rate=10r/s;
    limit_req_zone $binary_remote_addr zone=prediction:10m rate=5000r/s;
    limit_req_zone $binary_remote_addr zone=console:10m rate=50r/s;
    limit_req_status 429;
    limit_req_log_level warn;
    client_max_body_size @ELSEWHERE_BODY@;

    upstream atalaia_training {
@TRAINING@        keepalive 16;
    }
    upstream atalaia_inference {
@INFERENCE@        keepalive 64;
    }
    # The same replicas, one series always to the same one (the stream state it
    # keeps), by a consistent hash of its id: when a replica fails, only its
    # series move.
    upstream atalaia_inference_by_series {
        hash $series consistent;
@INFERENCE@        keepalive 64;
    }
    upstream atalaia_plot {
@PLOT@        keepalive 8;
    }
    upstream atalaia_health {
@HEALTH@        keepalive 4;
    }

    # Who answers /api/v1/series/{id}/points: inference stores and scores.
    map $request_method $points_service {
        POST atalaia_inference_by_series;
        default atalaia_training;
    }

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-ID $request_id;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_connect_timeout 2s;

    # Plain HTTP: the probes' /ready, and a redirect to HTTPS for the rest
    # (308: the method and body are kept, so a POST is sent again as a POST).
    server {
        listen @LISTEN@;
        client_max_body_size 0;  # redirected, not read: HTTPS applies the limits

        location = /ready {
            return 200 '{"status": "ready", "service": "gateway"}';
        }
        location / {
            return 308 https://$host@HTTPS_PORT@$request_uri;
        }
    }

    server {
        listen @TLS_LISTEN@ ssl;
        ssl_certificate @TLS_CERT@;
        ssl_certificate_key @TLS_KEY@;
        add_header Strict-Transport-Security "max-age=@HSTS_MAX_AGE@" always;

        error_page 413 @too_large;
        error_page 429 @rate_limited;
        error_page 502 504 =503 @unavailable;

        # The gateway's own probe; /health is the platform's consolidated status.
        location = /ready {
            return 200 '{"status": "ready", "service": "gateway"}';
        }
        location = /health {
            proxy_pass http://atalaia_health/api/v1/health;
        }
        location = /api/v1/health {
            proxy_pass http://atalaia_health;
        }

        # Readings sent in are stored and scored by inference (POST, idempotent
        # per series and timestamp: a replica's failure is retried on another);
        # reading them back is the training API's (GET).
        location ~ ^/api/v1/series/(?<series>[^/]+)/points$ {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @MANAGEMENT_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://$points_service;
        }
        location = /api/v1/series/points {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @MANAGEMENT_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://atalaia_inference;
        }
        location ~ ^/api/v1/(@MANAGEMENT_ROUTES@)(/|$) {
            limit_req zone=management burst=20 nodelay;
            client_max_body_size @MANAGEMENT_BODY@;
            proxy_pass http://atalaia_training;
        }
        # Uploaded files go through as they arrive, not spooled here first:
        # the training service streams them to its own disk.
        location ~ ^/api/v1/(@UPLOAD_ROUTES@)(/|$) {
            limit_req zone=management burst=20 nodelay;
            client_max_body_size @UPLOAD_BODY@;
            proxy_request_buffering off;
            proxy_pass http://atalaia_training;
        }
        location ~ ^/api/v1/(@TRAINING_ROUTES@)(/|$) {
            limit_req zone=management burst=20 nodelay;
            proxy_pass http://atalaia_training;
        }
        # The console's files (the training service serves them) and / to it.
        location /console/ {
            limit_req zone=console burst=100 nodelay;
            proxy_pass http://atalaia_training;
        }
        location = / {
            absolute_redirect off;  # behind TLS or another proxy, still right
            return 302 /console/;
        }
        location ~ ^/fit/(?<series>[^/]+)$ {
            limit_req zone=management burst=20 nodelay;
            client_max_body_size @MANAGEMENT_BODY@;
            rewrite ^ /api/v1/training/$series break;
            proxy_pass http://atalaia_training;
        }

        # Scoring reads only, so a request a replica failed is retried on another.
        # One series' readings go to its replica; batches to any.
        location ~ ^/api/v1/predict/(?!batch$)(?<series>[^/]+)$ {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @PREDICTION_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://atalaia_inference_by_series;
        }
        location ~ ^/predict/(?!batch$)(?<series>[^/]+)$ {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @PREDICTION_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://atalaia_inference_by_series/api/v1/predict/$series$is_args$args;
        }
        location ~ ^/api/v1/(@PREDICTION_ROUTES@)(/|$) {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @PREDICTION_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://atalaia_inference;
        }
        location /predict/ {
            limit_req zone=prediction burst=5000 nodelay;
            client_max_body_size @PREDICTION_BODY@;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_pass http://atalaia_inference/api/v1/predict/;
        }
        # A reload reaches one replica; the others follow the registry's change feed.
        location ~ ^/api/v1/admin(/|$) {
            limit_req zone=management burst=20 nodelay;
            proxy_pass http://atalaia_inference;
        }

        location ~ ^/api/v1/plot(/|$) {
            limit_req zone=management burst=20 nodelay;
            proxy_pass http://atalaia_plot;
        }
        location = /plot {
            limit_req zone=management burst=20 nodelay;
            proxy_pass http://atalaia_plot/api/v1/plot;
        }

        location / {
            return 404 '{"error": "NotFound", "rule": "route_exists", \
"detail": "no route at the gateway"}';
        }

        location @too_large {
            return 413 '{"error": "PayloadTooLarge", "rule": "gateway_body_size", \
"detail": "the body is larger than the gateway allows: @PREDICTION_BODY@ for \
predictions, @MANAGEMENT_BODY@ for training and series, @ELSEWHERE_BODY@ elsewhere"}';
        }
        location @rate_limited {
            # A location's own add_header drops the server's: HSTS again.
            add_header Strict-Transport-Security "max-age=@HSTS_MAX_AGE@" always;
            add_header Retry-After 1 always;
            return 429 '{"error": "RateLimited", "rule": "gateway_rate_limit", \
"detail": "too many requests from this address; retry later"}';
        }
        location @unavailable {
            return 503 '{"error": "ServiceUnavailable", "rule": "service_available", \
"detail": "no instance of this service answered the gateway"}';
        }
    }
}
"""


def render_nginx_conf(
    upstreams: Mapping[str, Sequence[str]],
    *,
    listen: str,
    tls: GatewayTls,
    runtime_dir: str,
    access_log: str,
    error_log: str = "stderr",
    user: str | None = None,
) -> str:
    """The gateway's nginx.conf; `upstreams` maps each of SERVICES to host:port.

    `listen` answers plain HTTP (the probes' /ready, else a redirect to HTTPS).
    """
    if missing := [s for s in SERVICES if not upstreams.get(s)]:
        raise ValueError(f"no upstream for {', '.join(missing)}")
    values = {
        "USER": f"user {user};\n" if user else "",
        "LISTEN": listen,
        "TLS_LISTEN": tls.listen,
        "TLS_CERT": tls.cert_file,
        "TLS_KEY": tls.key_file,
        "HTTPS_PORT": (
            "" if tls.public_port == HTTPS_DEFAULT_PORT else f":{tls.public_port}"
        ),
        "HSTS_MAX_AGE": str(HSTS_MAX_AGE_S),
        "CIPHERS": MODERN_CIPHERS,
        "RUNTIME": runtime_dir,
        "ACCESS_LOG": access_log,
        "ERROR_LOG": error_log,
        # The services' own limits (one table), in nginx's units.
        "PREDICTION_BODY": f"{PREDICTION.size // MIB}m",
        "PREDICTION_ROUTES": "|".join(PREDICTION.routes),
        "MANAGEMENT_BODY": f"{MANAGEMENT.size // MIB}m",
        "MANAGEMENT_ROUTES": "|".join(MANAGEMENT.routes),
        "UPLOAD_BODY": f"{UPLOAD.size // MIB}m",
        "UPLOAD_ROUTES": "|".join(UPLOAD.routes),
        "ELSEWHERE_BODY": f"{ELSEWHERE // MIB}m",
        "TRAINING_ROUTES": "|".join(TRAINING_ROUTES),
    }
    for service in SERVICES:
        values[service.upper()] = "".join(
            f"        server {address} max_fails=1 fail_timeout=10s;\n"
            for address in upstreams[service]
        )
    text = _TEMPLATE
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def nginx_binary() -> str:
    """The nginx binary on PATH or in /usr/sbin (Debian puts it there)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx)")
    return found


def gateway_spec(nginx: str, conf: Path, port: int) -> ProcessSpec:
    """nginx in the foreground with `conf`, its prefix the conf's folder."""
    prefix = conf.parent
    return ProcessSpec(
        name="gateway",
        argv=(nginx, "-p", str(prefix), "-c", str(conf))
        + ("-e", "stderr", "-g", "daemon off;"),
        port=port,
    )
