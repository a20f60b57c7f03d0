#!/usr/bin/env bash
# Roll a running instance to a new image and/or model with no downtime: sends
# /usr/local/bin/classifier-deploy through SSM (no SSH). The new container takes traffic only
# after it answers /readyz; if it never does, the old one keeps serving and this exits 1.
#
#   AWS_REGION=eu-west-1 INSTANCE_ID=i-0123456789abcdef0 IMAGE=...:animals10-v2 deploy/ec2/update.sh
#   AWS_REGION=eu-west-1 INSTANCE_ID=i-0123456789abcdef0 MODEL_S3=s3://my-models/animals10/v2/model.onnx deploy/ec2/update.sh
#
# Env: AWS_REGION, INSTANCE_ID (required); IMAGE and/or MODEL_S3 (at least one;
#      MODEL_S3= (set, empty) switches back to the model baked in the image);
#      DRY_RUN=1 prints the command it would run on the instance and stops (no AWS call).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

require AWS_REGION "the AWS region, e.g. eu-west-1" INSTANCE_ID "the id printed by launch.sh"
assignments=""
[[ -z ${IMAGE:-} ]] || assignments+="IMAGE=$(printf %q "$IMAGE") "
[[ -z ${MODEL_S3+set} ]] || assignments+="MODEL_S3=$(printf %q "$MODEL_S3") "
[[ -n $assignments ]] || die "IMAGE or MODEL_S3 is required: a new image URI and/or a new s3:// model"
remote_command="${assignments}/usr/local/bin/classifier-deploy"
if [[ ${DRY_RUN:-} == 1 ]]; then
    echo "$remote_command"
    exit 0
fi
need aws python3

params=$(python3 -c 'import json, sys; print(json.dumps({"commands": [sys.argv[1]]}))' "$remote_command")
command_id=$(aws ssm send-command --region "$AWS_REGION" --instance-ids "$INSTANCE_ID" \
    --document-name AWS-RunShellScript --comment "image-classifier update" \
    --parameters "$params" --query Command.CommandId --output text)

status=Pending
while [[ $status == Pending || $status == InProgress || $status == Delayed ]]; do
    sleep 5
    status=$(aws ssm get-command-invocation --region "$AWS_REGION" --command-id "$command_id" \
        --instance-id "$INSTANCE_ID" --query Status --output text 2>/dev/null || echo Pending)
done
aws ssm get-command-invocation --region "$AWS_REGION" --command-id "$command_id" --instance-id "$INSTANCE_ID" \
    --query '[StandardOutputContent, StandardErrorContent]' --output text
[[ $status == Success ]] || die "update $status on $INSTANCE_ID; the previous container is still serving"
