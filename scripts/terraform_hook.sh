#!/usr/bin/env bash
# pre-commit wrapper for the Terraform hooks: `terraform_hook.sh fmt|validate [file.tf ...]`.
#
#   fmt       rewrites the given .tf files in canonical style (pre-commit then reports the change)
#   validate  runs `terraform init -backend=false` + `terraform validate` in every module or example
#             directory that holds one of the given files. Providers come from the local mirror
#             S3STAGGER_TF_PLUGIN_DIR (default /opt/tf-plugins, as for tests/iac) when it holds
#             the AWS provider; with no mirror, `terraform init` downloads them once.
#
# Without a `terraform` binary the hook says so and passes: CI checks the same files without
# Terraform (python-hcl2 parsing, checkov and tests/iac via `make test`).
set -euo pipefail

usage() {
  echo "usage: $0 fmt|validate [file.tf ...]" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
command_name=$1
shift
case "$command_name" in
  fmt | validate) ;;
  *) usage ;;
esac

if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform is not installed: skipped 'terraform ${command_name}'." >&2
  echo "Install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install) to run it;" >&2
  echo "'make test' still parses every .tf file and runs checkov without it." >&2
  exit 0
fi

if [[ $# -eq 0 ]]; then
  mapfile -t files < <(git ls-files -- 'terraform/*.tf' 'terraform/**/*.tf')
else
  files=("$@")
fi
[[ ${#files[@]} -gt 0 ]] || exit 0

status=0
if [[ $command_name == fmt ]]; then
  for file in "${files[@]}"; do
    terraform fmt -list=true "$file" || status=1
  done
  exit "$status"
fi

init_options=(-backend=false -input=false -no-color)
plugin_dir=${S3STAGGER_TF_PLUGIN_DIR:-/opt/tf-plugins}
if compgen -G "${plugin_dir}/registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*" >/dev/null; then
  echo "terraform providers from the local mirror ${plugin_dir}"
  init_options+=("-plugin-dir=${plugin_dir}") # offline
elif [[ -n ${S3STAGGER_TF_PLUGIN_DIR:-} ]]; then
  echo "S3STAGGER_TF_PLUGIN_DIR=${S3STAGGER_TF_PLUGIN_DIR} holds no hashicorp/aws provider" >&2
  exit 1
fi

mapfile -t directories < <(for file in "${files[@]}"; do dirname "$file"; done | sort -u)
for directory in "${directories[@]}"; do
  echo "terraform validate: $directory"
  if [[ " ${init_options[*]} " == *" -plugin-dir="* ]]; then
    missing=""
    while read -r source; do
      [[ -d "${plugin_dir}/registry.terraform.io/${source}" ]] || missing="$missing $source"
    done < <(grep -ho 'source *= *"[a-z0-9-]*/[a-z0-9-]*"' "$directory"/*.tf | sed 's/.*"\(.*\)"/\1/' | sort -u)
    if [[ -n $missing ]]; then
      echo "  skipped: the mirror ${plugin_dir} lacks${missing} (the IaC tests skip it for the same reason)"
      continue
    fi
  fi
  if ! terraform -chdir="$directory" init "${init_options[@]}" >/dev/null; then
    echo "terraform init failed in $directory (provider download?): run it there to see why" >&2
    status=1
    continue
  fi
  terraform -chdir="$directory" validate -no-color || status=1
done
exit "$status"
