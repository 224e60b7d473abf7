"""Settings are parsed strictly: a GITOPS_ML_* value outside what a setting accepts stops the image's
server before it listens, naming the variable and the accepted values, instead of starting with a
default (auth off for `ture`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_ml.errors import ConfigError
from gitops_ml.serving.settings import ServerSettings
from tests.serving.conftest import EXAMPLES, free_port

BAD = [
    ("GITOPS_ML_AUTH_ENABLED", "ture", "use true or false (also 1/0, yes/no, on/off)"),
    ("GITOPS_ML_MAX_CONCURRENT", "two", "use a whole number from 1 to 1024"),
    ("GITOPS_ML_MAX_CONCURRENT", "0", "use a whole number from 1 to 1024"),
    ("GITOPS_ML_QUEUE_TIMEOUT", "nan", "use a number above 0 and at most 600"),
    ("GITOPS_ML_REJECT_STATUS", "500", "use one of 503, 429"),
    ("GITOPS_ML_PORT", "99999", "use a whole number from 0 to 65535"),
    ("GITOPS_ML_CAPTURE_SAMPLING", "50%", "use a number from 0 to 1"),
    ("GITOPS_ML_PATH_PREFIX", "/iris/", "use '' or a path such as /iris (no trailing '/')"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_an_invalid_variable_stops_the_image_server_naming_it(
    tmp_path: Path, name: str, value: str, accepted: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
    env.update({"GITOPS_ML_KEYS_DIR": str(tmp_path), name: value})
    port = str(free_port())
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitops_ml.serving",
            "--model-dir",
            str(EXAMPLES / "iris"),
            "--host",
            "127.0.0.1",
            "--port",
            port,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 3, run.stderr
    (line,) = [json.loads(line) for line in run.stderr.splitlines() if '"level":"error"' in line]
    assert line["message"] == f"{name}={value!r} is not accepted: {accepted}"
    assert "starting" not in run.stderr and "Traceback" not in run.stderr


def test_every_invalid_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env(
            {"GITOPS_ML_AUTH_ENABLED": "maybe", "GITOPS_ML_QUEUE_SIZE": "-1", "GITOPS_ML_BODY_TIMEOUT": "30s"}
        )
    message = str(caught.value)
    for name in ("GITOPS_ML_AUTH_ENABLED='maybe'", "GITOPS_ML_QUEUE_SIZE='-1'", "GITOPS_ML_BODY_TIMEOUT='30s'"):
        assert name in message


def test_valid_spellings_are_read() -> None:
    settings = ServerSettings.from_env(
        {
            "GITOPS_ML_AUTH_ENABLED": " Off ",
            "GITOPS_ML_ACCESS_LOG": "YES",
            "GITOPS_ML_MAX_CONCURRENT": "+4",
            "GITOPS_ML_QUEUE_TIMEOUT": "2.5",
            "GITOPS_ML_REQUEST_TIMEOUT": "1e1",
            "GITOPS_ML_REJECT_STATUS": "429",
            "GITOPS_ML_PATH_PREFIX": "/ml/iris",
            "GITOPS_ML_HOST": "::",
        }
    )
    assert (settings.auth_enabled, settings.access_log, settings.max_concurrent) == (False, True, 4)
    assert (settings.queue_timeout, settings.request_timeout, settings.reject_status) == (2.5, 10.0, 429)
    assert (settings.path_prefix, settings.host) == ("/ml/iris", "::")
    assert ServerSettings.from_env(settings.to_env()) == settings, "what render writes, the server reads back"


def test_the_image_warns_about_unknown_variables(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
    env.update(GITOPS_ML_AUTH_ENABLE="false", GITOPS_ML_PORT="70000")
    # what `serve --env-manager venv` and the image of a built-in model set are known, not typos
    env.update(GITOPS_ML_BUILTIN="", GITOPS_ML_ARTIFACT="", GITOPS_ML_BUILTIN_OPTIONS="")
    run = subprocess.run(
        [sys.executable, "-m", "gitops_ml.serving", "--model-dir", str(EXAMPLES / "iris")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 3
    warning = next(json.loads(line) for line in run.stderr.splitlines() if '"level":"warning"' in line)
    assert warning["variables"] == ["GITOPS_ML_AUTH_ENABLE"]
