#!/usr/bin/env bash
# Apply the manifests in this folder with the image (and, optionally, the S3 model) filled in.
#
#   IMAGE=123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-classifier:animals10-v1 deploy/k8s/apply.sh
#   IMAGE=... MODEL_S3=s3://my-models/animals10/v1/model.onnx deploy/k8s/apply.sh
#
# Env: IMAGE (required), MODEL_S3 (optional: use variants/deployment-s3-model.yaml),
#      NAMESPACE (default: kubectl's current), DRY_RUN=1 prints the manifests instead of applying.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ -n ${IMAGE:-} ]] || { echo "error: IMAGE is required: the image URI printed by push-ecr.sh" >&2; exit 2; }
deployment=$here/deployment.yaml
if [[ -n ${MODEL_S3:-} ]]; then
    [[ $MODEL_S3 == s3://* ]] || { echo "error: MODEL_S3 must be an s3:// URI" >&2; exit 2; }
    deployment=$here/variants/deployment-s3-model.yaml
fi

render() {
    local file
    for file in "$deployment" "$here/service.yaml" "$here/hpa.yaml" "$here/pdb.yaml"; do
        echo "---"
        sed -e "s|image: IMAGE |image: $IMAGE |" -e "s|\"MODEL_S3\"|\"${MODEL_S3:-}\"|" "$file"
    done
}

if [[ ${DRY_RUN:-0} == 1 ]]; then
    render
else
    render | kubectl apply ${NAMESPACE:+--namespace "$NAMESPACE"} -f -
    kubectl rollout status ${NAMESPACE:+--namespace "$NAMESPACE"} deployment/image-classifier --timeout=10m
fi
