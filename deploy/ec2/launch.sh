#!/usr/bin/env bash
# Launch one EC2 instance that serves IMAGE on PORT: a security group that opens only that
# port, an instance role that can pull from ECR, read the model from S3 and be reached
# through SSM (no SSH), and user-data that installs Docker and runs the container.
#
#   AWS_REGION=eu-west-1 IMAGE=123456789012.dkr.ecr.eu-west-1.amazonaws.com/image-classifier:animals10-v1 \
#       deploy/ec2/launch.sh
#
# Env:
#   AWS_REGION      region (required)
#   IMAGE           image URI printed by push-ecr.sh (required)
#   INSTANCE_TYPE   default c7i.large; c7g.large (Graviton, arm64) is cheaper per INT8 prediction
#   MODEL_S3        optional s3://bucket/key.onnx mounted at /models (else the model baked in the image)
#   PORT            public port (default 80)
#   ALLOW_CIDR      who may reach PORT (default 0.0.0.0/0: public)
#   NAME            prefix of the created resources (default image-classifier)
#   SSH_CIDR        optional, with KEY_NAME: also open port 22 to this CIDR only (SSM needs no port)
#   KEY_NAME        optional EC2 key pair for SSH
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

require AWS_REGION "the AWS region, e.g. eu-west-1" IMAGE "the image URI printed by push-ecr.sh"
instance_type=${INSTANCE_TYPE:-c7i.large}
port=${PORT:-80}
allow_cidr=${ALLOW_CIDR:-0.0.0.0/0}
name=${NAME:-image-classifier}
if [[ -n ${SSH_CIDR:-} && -z ${KEY_NAME:-} ]]; then
    die "SSH_CIDR needs KEY_NAME (or leave both unset and use: aws ssm start-session --target INSTANCE_ID)"
fi
user_data=$(mktemp)
trap 'rm -f "$user_data"' EXIT
PORT=$port "$here/render-user-data.sh" >"$user_data"
need aws
export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION

ensure_role() {  # instance role + profile: ECR pull, SSM, and read access to the model object
    if ! aws iam get-role --role-name "$name-ec2" >/dev/null 2>&1; then
        aws iam create-role --role-name "$name-ec2" >/dev/null --assume-role-policy-document \
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        aws iam attach-role-policy --role-name "$name-ec2" \
            --policy-arn arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly
        aws iam attach-role-policy --role-name "$name-ec2" \
            --policy-arn arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore
        aws iam create-instance-profile --instance-profile-name "$name-ec2" >/dev/null
        aws iam add-role-to-instance-profile --instance-profile-name "$name-ec2" --role-name "$name-ec2"
    fi
    if [[ -n ${MODEL_S3:-} ]]; then
        local bucket=${MODEL_S3#s3://}
        bucket=${bucket%%/*}
        aws iam put-role-policy --role-name "$name-ec2" --policy-name read-models --policy-document \
            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::$bucket/*\"}]}"
    fi
}

ensure_security_group() {  # prints the group id
    local vpc sg
    vpc=${VPC_ID:-$(aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId' --output text)}
    [[ $vpc != None ]] || die "no default VPC in $AWS_REGION: set VPC_ID (and SUBNET_ID)"
    sg=$(aws ec2 describe-security-groups --filters "Name=group-name,Values=$name" "Name=vpc-id,Values=$vpc" \
        --query 'SecurityGroups[0].GroupId' --output text)
    if [[ $sg == None ]]; then
        sg=$(aws ec2 create-security-group --group-name "$name" --vpc-id "$vpc" \
            --description "image classifier: port $port only" --query GroupId --output text)
        aws ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port "$port" \
            --cidr "$allow_cidr" >/dev/null
        if [[ -n ${SSH_CIDR:-} ]]; then
            aws ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port 22 \
                --cidr "$SSH_CIDR" >/dev/null
        fi
    fi
    echo "$sg"
}

run_instance() {  # prints the instance id; retries while a new instance profile propagates
    local arch ami attempt extra=()
    arch=$(aws ec2 describe-instance-types --instance-types "$instance_type" \
        --query 'InstanceTypes[0].ProcessorInfo.SupportedArchitectures[0]' --output text)
    ami=$(aws ssm get-parameter --name "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-$arch" \
        --query Parameter.Value --output text)
    [[ -z ${KEY_NAME:-} ]] || extra+=(--key-name "$KEY_NAME")
    [[ -z ${SUBNET_ID:-} ]] || extra+=(--subnet-id "$SUBNET_ID")
    for attempt in 1 2 3 4 5 6; do
        if aws ec2 run-instances --image-id "$ami" --instance-type "$instance_type" --count 1 \
            --iam-instance-profile "Name=$name-ec2" --security-group-ids "$1" \
            --user-data "file://$user_data" --metadata-options HttpTokens=required,HttpEndpoint=enabled \
            --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$name}]" \
            ${extra[@]+"${extra[@]}"} --query 'Instances[0].InstanceId' --output text; then
            return 0
        fi
        echo "run-instances failed (attempt $attempt); the instance profile may still be propagating" >&2
        sleep 10
    done
    die "run-instances kept failing"
}

ensure_role
sg=$(ensure_security_group)
instance=$(run_instance "$sg")
aws ec2 wait instance-running --instance-ids "$instance"
host=$(aws ec2 describe-instances --instance-ids "$instance" \
    --query 'Reservations[0].Instances[0].PublicDnsName' --output text)
cat <<DONE
INSTANCE_ID=$instance
ENDPOINT=http://$host:$port
Docker install, image pull and model warm-up take a few minutes after boot. Then:
  curl -fsS http://$host:$port/readyz
  curl -fsS -F "file=@elephant.jpg;type=image/jpeg" http://$host:$port/predict
Logs:  aws ssm start-session --target $instance   then   sudo tail -f /var/log/classifier-deploy.log
DONE
