import pytest

from s3stagger.config import ConfigError, ProcessorSettings

URL = {"S3STAGGER_DOWNSTREAM_URL": "http://127.0.0.1:8080/rows"}


def test_defaults_apply_when_only_the_url_is_set() -> None:
    settings = ProcessorSettings.from_env(URL)
    assert settings.downstream_url == URL["S3STAGGER_DOWNSTREAM_URL"]
    assert settings.max_concurrency == 10
    assert settings.expected_header is None
    assert settings.failed_rows_prefix == "failed-rows/"


def test_values_are_parsed_and_initial_concurrency_is_capped_by_the_maximum() -> None:
    env = URL | {
        "S3STAGGER_MAX_CONCURRENCY": "4",
        "S3STAGGER_INITIAL_CONCURRENCY": "9",
        "S3STAGGER_READ_TIMEOUT_S": "1.5",
        "S3STAGGER_EXPECTED_HEADER": "id, name ,amount",
        "S3STAGGER_CSV_DELIMITER": ";",
        "S3STAGGER_MAX_LINE_BYTES": "4096",
        "S3STAGGER_MAX_THROTTLED_ATTEMPTS": "7",
    }
    settings = ProcessorSettings.from_env(env)
    assert settings.max_concurrency == 4
    assert settings.initial_concurrency == 4
    assert settings.read_timeout_s == 1.5
    assert settings.expected_header == ("id", "name", "amount")
    assert settings.csv_delimiter == ";"
    assert settings.max_throttled_attempts == 7
    assert settings.max_line_bytes == 4096


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "S3STAGGER_DOWNSTREAM_URL is required"),
        ({"S3STAGGER_DOWNSTREAM_URL": "ftp://x"}, "must start with http"),
        (URL | {"S3STAGGER_MAX_CONCURRENCY": "many"}, "S3STAGGER_MAX_CONCURRENCY='many' is not an integer"),
        (URL | {"S3STAGGER_MAX_CONCURRENCY": "0"}, "must be >= 1"),
        (URL | {"S3STAGGER_READ_TIMEOUT_S": "soon"}, "S3STAGGER_READ_TIMEOUT_S='soon' is not a number"),
        (URL | {"S3STAGGER_READ_TIMEOUT_S": "0"}, "must be >= 0.001"),
        (URL | {"S3STAGGER_CSV_DELIMITER": ";;"}, "single character"),
        (URL | {"S3STAGGER_CSV_DELIMITER": '"'}, "not a quote or newline|other than a quote or newline"),
        (URL | {"S3STAGGER_MAX_LINE_BYTES": "0"}, "S3STAGGER_MAX_LINE_BYTES=0 must be >= 1"),
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProcessorSettings.from_env(env)
