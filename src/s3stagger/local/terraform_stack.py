"""Local mode on what Terraform builds: the real modules applied to the embedded emulator.

:class:`TerraformApply` copies ``terraform/modules`` and the ``terraform/examples/local`` root into
a temporary workspace (state included, nothing is written to the repository), runs ``terraform
init`` (from the offline provider mirror when there is one) and ``terraform apply`` with every AWS
endpoint pointed at the emulator, and returns the root's outputs.

:class:`TerraformPipeline` is :class:`~s3stagger.local.pipeline.LocalPipeline` with that apply in
place of local provisioning: the local Lambda runtime serves the function Terraform made (by its
``Handler``; the uploaded zip is a placeholder) and the local scheduler starts the state machine the
schedule Terraform made targets, with that schedule's input. The emulator gaps Terraform meets are
stood in for by :data:`s3stagger.local.emulator.EMULATOR_PATCHES` (``docs/local-mode.md``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess  # nosec B404 - runs the terraform binary with fixed arguments
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from s3stagger.definitions import DEFINITIONS_PACKAGE
from s3stagger.errors import S3StaggerError
from s3stagger.local.emulator import FAKE_CREDENTIALS
from s3stagger.local.pipeline import LocalPipeline, LocalPipelineSettings
from s3stagger.local.provision import ResourceNames

LOCAL_ROOT = Path("examples") / "local"
"""The root module applied to the emulator, relative to the ``terraform/`` directory."""
DEFAULT_PLUGIN_DIR = Path("/opt/tf-plugins")
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
"""The placeholder EventBridge Scheduler replaces in a target's input with the slot's time."""

OutputListener = Callable[[str], None]


class TerraformError(S3StaggerError, RuntimeError):
    """Terraform is missing, or ``init``/``apply`` failed (the message ends with its last lines)."""


def terraform_dir() -> Path:
    """The repository's ``terraform/`` directory (``S3STAGGER_TERRAFORM_DIR`` overrides it)."""
    configured = os.environ.get("S3STAGGER_TERRAFORM_DIR")
    directory = Path(configured) if configured else Path(__file__).resolve().parents[3] / "terraform"
    if not (directory / LOCAL_ROOT / "main.tf").is_file():
        raise TerraformError(
            f"no Terraform root at {directory / LOCAL_ROOT}: run from a checkout of s3stagger "
            "or set S3STAGGER_TERRAFORM_DIR to its terraform/ directory"
        )
    return directory


def plugin_dir() -> Path | None:
    """The offline AWS provider mirror (``S3STAGGER_TF_PLUGIN_DIR``, default ``/opt/tf-plugins``), if any."""
    directory = Path(os.environ.get("S3STAGGER_TF_PLUGIN_DIR", str(DEFAULT_PLUGIN_DIR)))
    return directory if any(directory.glob("registry.terraform.io/hashicorp/aws/*/*")) else None


def definitions_dir() -> Path:
    """The definition files of the installed package, which the modules read as ``definitions_path``."""
    return Path(str(resources.files(DEFINITIONS_PACKAGE)))


def placeholder_package(path: Path) -> Path:
    """A Lambda zip that says what runs instead: the local Lambda runtime imports the handler."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("README.txt", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, "s3stagger local mode runs the handler from the installed package.\n")
    path.write_bytes(buffer.getvalue())
    return path


def fill_scheduled_time(schedule_input: str, scheduled_time: str) -> str:
    """``schedule_input`` with EventBridge Scheduler's placeholder replaced, in JSON strings too
    (Terraform's ``jsonencode`` writes ``<`` and ``>`` as ``\\u003c`` and ``\\u003e``)."""
    try:
        document = json.loads(schedule_input)
    except ValueError:
        return schedule_input.replace(SCHEDULED_TIME, scheduled_time)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(SCHEDULED_TIME, scheduled_time)
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        return value

    return json.dumps(fill(document))


@dataclass
class TerraformApply:
    """One ``terraform apply`` of ``examples/local`` to the emulator at ``endpoint_url``."""

    endpoint_url: str
    variables: Mapping[str, Any]
    """Input variables of the root besides ``endpoint_url`` (``downstream_url``, ``package_path``...)."""
    workspace: Path
    on_output: OutputListener = field(default=lambda line: None)
    """Called with every line Terraform prints (progress)."""
    timeout_s: float = 900.0

    @property
    def root(self) -> Path:
        return self.workspace / "terraform" / LOCAL_ROOT

    def run(self) -> dict[str, Any]:
        """Copy, init, apply; the root's outputs by name (their values)."""
        terraform = shutil.which("terraform")
        if terraform is None:
            raise TerraformError("terraform is not installed (needed for --via-terraform)")
        source = terraform_dir()
        ignore = shutil.ignore_patterns(".terraform*", "*.tfstate*", "tests")
        shutil.copytree(source / "modules", self.workspace / "terraform" / "modules", ignore=ignore)
        shutil.copytree(source / LOCAL_ROOT, self.root, ignore=ignore)
        variables = {**self.variables, "endpoint_url": self.endpoint_url}
        (self.root / "terraform.tfvars.json").write_text(json.dumps(variables), encoding="utf-8")
        mirror = plugin_dir()
        init = ["init", "-input=false", "-backend=false"]
        if mirror is not None:
            init.append(f"-plugin-dir={mirror}")
        self._terraform(terraform, init)
        self._terraform(terraform, ["apply", "-input=false", "-auto-approve", "-parallelism=30"])
        outputs = json.loads(self._terraform(terraform, ["output", "-json"], quiet=True))
        return {name: output["value"] for name, output in outputs.items()}

    def environment(self) -> dict[str, str]:
        config = self.workspace / "terraformrc"
        config.write_text("disable_checkpoint = true\n", encoding="utf-8")
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "TF_VAR_")) and name != "TF_CLI_ARGS"
        }
        environment.update(
            {
                **FAKE_CREDENTIALS,
                "AWS_EC2_METADATA_DISABLED": "true",
                "TF_CLI_CONFIG_FILE": str(config),
                "CHECKPOINT_DISABLE": "1",
                "TF_IN_AUTOMATION": "1",
            }
        )
        return environment

    def _terraform(self, terraform: str, arguments: list[str], *, quiet: bool = False) -> str:
        command = [terraform, *arguments, "-no-color"]
        deadline = time.monotonic() + self.timeout_s
        lines: list[str] = []
        with subprocess.Popen(  # noqa: S603  # nosec B603 - terraform from PATH, fixed arguments
            command,
            cwd=self.root,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            output = process.stdout
            if output is None:  # pragma: no cover - stdout is a PIPE above
                raise TerraformError("terraform's output could not be read")
            for line in output:
                lines.append(line)
                if not quiet:
                    self.on_output(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    process.kill()
                    raise TerraformError(f"terraform {arguments[0]} took longer than {self.timeout_s:.0f} s")
            status = process.wait()
        if status != 0:
            tail = "".join(lines[-15:]).strip()
            raise TerraformError(f"terraform {arguments[0]} failed (exit {status}): {tail}")
        return "".join(lines)


# Settings local provisioning takes that the examples/local root does not expose.
_UNSUPPORTED = (
    "processor_timeout_s",
    "processor_reserved_concurrency",
    "processor_handler",
    "max_receive_count",
    "visibility_timeout_s",
    "stagger",
)


class TerraformPipeline(LocalPipeline):
    """:class:`LocalPipeline` whose resources ``terraform apply`` builds (see the module docstring)."""

    def __init__(self, settings: LocalPipelineSettings, on_output: OutputListener | None = None) -> None:
        unsupported = [name for name in _UNSUPPORTED if getattr(settings, name) is not None]
        if settings.dispatcher:
            unsupported.append("dispatcher")
        if unsupported:
            raise TerraformError(
                "--via-terraform applies terraform/examples/local, which does not take "
                + ", ".join(unsupported)
            )
        super().__init__(settings)
        self.on_output = on_output or (lambda line: None)
        self._workspace: tempfile.TemporaryDirectory[str] | None = None
        self._schedule_input = "{}"

    def _provision(self) -> ResourceNames:
        self._workspace = tempfile.TemporaryDirectory(prefix="s3stagger-terraform-")
        workspace = Path(self._workspace.name)
        settings = self.settings
        outputs = TerraformApply(
            endpoint_url=self.endpoint_url,
            variables={
                "region": settings.region,
                "name_prefix": settings.name_prefix,
                "definitions_path": str(definitions_dir()),
                "downstream_url": settings.downstream_url,
                "package_path": str(placeholder_package(workspace / "placeholder-lambda.zip")),
                "processor_environment": dict(settings.processor_environment),
                "concurrency_budget": settings.concurrency_budget,
            },
            workspace=workspace,
            on_output=self.on_output,
        ).run()
        return self._names_from(outputs["resource_names"])

    def _names_from(self, built: Mapping[str, Any]) -> ResourceNames:
        """Local mode's names of what Terraform built, with what only the emulator can tell."""
        schedule_name = str(built["schedule_arn"]).rsplit("/", 1)[-1]
        schedule = self.client("scheduler").get_schedule(Name=schedule_name)
        target = schedule["Target"]
        if target["Arn"] != built["state_machine_arn"]:
            raise TerraformError(
                f"schedule {schedule_name} targets {target['Arn']}, "
                f"not the state machine {built['state_machine_arn']}"
            )
        self._schedule_input = str(target.get("Input") or "{}")
        environment = self.client("lambda").get_function_configuration(FunctionName=built["function_name"])
        failed_rows_prefix = environment["Environment"]["Variables"]["S3STAGGER_FAILED_ROWS_PREFIX"]
        fields = {name: value for name, value in built.items() if name != "schedule_arn"}
        return ResourceNames(
            **{
                **fields,
                "priorities": tuple(built["priorities"]),
                "rule_names": tuple(built["rule_names"]),
                "failed_rows_prefix": str(failed_rows_prefix),
                "schedule_name": schedule_name,
            }
        )

    def execution_input(self, name: str) -> str:
        """The input of the schedule Terraform made, its scheduled-time placeholder filled in."""
        return fill_scheduled_time(self._schedule_input, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def stop(self) -> None:
        super().stop()
        if self._workspace is not None:
            self._workspace.cleanup()
            self._workspace = None
