# shellcheck shell=bash
# Helpers sourced by the deploy/ec2 scripts (not run on its own).
# Parameters come from environment variables; a missing one stops the script
# before any AWS call, with the variable's name and what it is for.

die() {
    echo "error: $*" >&2
    exit 2
}

# require NAME "what it is" [NAME "what it is" ...]
require() {
    while (($# >= 2)); do
        [[ -n ${!1:-} ]] || die "$1 is required: $2"
        shift 2
    done
}

# need COMMAND...: stop early when a tool is missing, not halfway through a deploy.
need() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd is not installed (needed by $(basename "$0"))"
    done
}
