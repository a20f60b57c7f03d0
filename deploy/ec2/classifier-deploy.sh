#!/usr/bin/env bash
# Runs ON the EC2 instance, as root: first from user-data at boot, then for every update
# (deploy/ec2/update.sh sends it through SSM). It runs the serve image behind a small
# nginx proxy on PORT, blue/green on one host: the new container starts beside the old one,
# nginx switches to it only once it answers /readyz, and `nginx -s reload` lets requests
# already in flight finish on the old one. A new model that fails to load never takes traffic.
#
# Env (each defaults to the value saved by the previous run in /etc/classifier/env):
#   IMAGE       image URI to run (required on the first run)
#   MODEL_S3    s3://bucket/key.onnx to download and mount at /models; empty: the model baked in the image
#   PORT        public port (default 80)
#   AWS_REGION  region for ECR login and S3 (default: the instance's region)
# Extra service settings (API_KEY, MAX_UPLOAD_BYTES...): put them in /etc/classifier/service.env.
set -euo pipefail

conf=/etc/classifier
proxy_image=nginx:1.27.5-alpine
ready_timeout=${READY_TIMEOUT:-300}

load_settings() {
    if [[ -f $conf/env ]]; then
        # shellcheck source=/dev/null
        source "$conf/env"
    fi
    IMAGE=${IMAGE:-${SAVED_IMAGE:-}}
    MODEL_S3=${MODEL_S3-${SAVED_MODEL_S3:-}}
    PORT=${PORT:-${SAVED_PORT:-80}}
    AWS_REGION=${AWS_REGION:-${SAVED_AWS_REGION:-$(imds placement/region)}}
    [[ -n $IMAGE ]] || { echo "error: IMAGE is required on the first run" >&2; exit 2; }
}

save_settings() {
    mkdir -p "$conf"
    printf 'SAVED_IMAGE=%q\nSAVED_MODEL_S3=%q\nSAVED_PORT=%q\nSAVED_AWS_REGION=%q\n' \
        "$IMAGE" "$MODEL_S3" "$PORT" "$AWS_REGION" >"$conf/env"
}

imds() {  # IMDSv2: a token first, then the metadata path
    local token
    token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
    curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

install_docker() {
    docker info >/dev/null 2>&1 && return  # already running: every run after the first
    command -v docker >/dev/null || dnf install -y docker
    systemctl enable --now docker
}

pull_image() {
    local registry=${IMAGE%%/*}
    if [[ $registry == *.dkr.ecr.*.amazonaws.com ]]; then
        aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$registry"
    fi
    # A registry that cannot be reached is no reason to stop when the image is already here
    # (ECR tags are immutable: the same tag is the same image).
    if ! docker pull "$IMAGE"; then
        docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "error: cannot pull $IMAGE" >&2; exit 1; }
        echo "warning: could not pull $IMAGE; using the copy already on this host" >&2
    fi
}

# Sets run_args to the docker-run arguments that mount the model (none when it is baked in).
fetch_model() {
    run_args=()
    [[ -n $MODEL_S3 ]] || return 0
    local dir
    dir=/opt/classifier/models/$(date +%Y%m%dT%H%M%S)
    mkdir -p "$dir"
    aws s3 cp --region "$AWS_REGION" --only-show-errors "$MODEL_S3" "$dir/model.onnx"
    chmod -R a+rX "$dir"
    run_args=(-v "$dir:/models:ro" -e MODEL_PATH=/models/model.onnx)
}

wait_ready() {
    local name=$1 deadline=$((SECONDS + ready_timeout))
    until docker exec "$name" python -c \
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" 2>/dev/null; do
        if ((SECONDS > deadline)) || [[ $(docker inspect -f '{{.State.Running}}' "$name") != true ]]; then
            echo "error: $name not ready after ${ready_timeout}s; the old container keeps serving" >&2
            docker logs --tail 50 "$name" >&2 || true
            docker rm -f "$name" >/dev/null
            exit 1
        fi
        sleep 2
    done
}

write_proxy_conf() {
    mkdir -p "$conf/nginx"
    cat >"$conf/nginx/default.conf.new" <<NGINX
upstream classifier { server $1:8000; keepalive 16; }
server {
    listen 80;
    client_max_body_size 25m;
    location / {
        proxy_pass http://classifier;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_read_timeout 60s;
    }
}
NGINX
    mv "$conf/nginx/default.conf.new" "$conf/nginx/default.conf"
}

switch_proxy() {
    write_proxy_conf "$1"
    if [[ $(docker inspect -f '{{.State.Running}}' classifier-proxy 2>/dev/null) == true ]]; then
        docker exec classifier-proxy nginx -s reload
    else
        docker rm -f classifier-proxy >/dev/null 2>&1 || true
        docker run -d --name classifier-proxy --restart unless-stopped --network classifier \
            -p "$PORT:80" -v "$conf/nginx:/etc/nginx/conf.d:ro" "$proxy_image" >/dev/null
    fi
}

main() {
    load_settings
    install_docker
    docker network inspect classifier >/dev/null 2>&1 || docker network create classifier >/dev/null
    pull_image

    local old="" new=classifier-blue
    if [[ $(docker inspect -f '{{.State.Running}}' classifier-blue 2>/dev/null) == true ]]; then
        old=classifier-blue new=classifier-green
    elif [[ $(docker inspect -f '{{.State.Running}}' classifier-green 2>/dev/null) == true ]]; then
        old=classifier-green
    fi
    local run_args=()
    fetch_model
    [[ ! -f $conf/service.env ]] || run_args+=(--env-file "$conf/service.env")

    docker rm -f "$new" >/dev/null 2>&1 || true
    docker run -d --name "$new" --restart unless-stopped --network classifier \
        ${run_args[@]+"${run_args[@]}"} "$IMAGE" >/dev/null
    wait_ready "$new"
    switch_proxy "$new"
    save_settings
    if [[ -n $old ]]; then
        sleep 10  # nginx's old workers finish their requests to the old container
        docker stop --time 30 "$old" >/dev/null
        docker rm "$old" >/dev/null
    fi
    echo "serving $IMAGE${MODEL_S3:+ with $MODEL_S3} from $new on port $PORT"
}

main "$@"
