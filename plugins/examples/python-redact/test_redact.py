"""Native tests of redact.py: `python3 -m unittest` in this folder."""

import pathlib
import unittest

import redact

DATA = pathlib.Path(__file__).parent.parent / "testdata"


def run(config):
    redactor = redact.Redactor(redact.parse_config(config))
    out = []
    for line in (DATA / "input.ndjson").read_bytes().splitlines():
        body, _, _ = redactor.redact(line)
        out.append((line if body is None else body) + b"\n")
    return b"".join(out)


class RedactTest(unittest.TestCase):
    def test_the_shared_input_gives_the_expected_output_with_the_default_config(self):
        self.assertEqual(run("{}"), (DATA / "expected-default.ndjson").read_bytes())

    def test_the_shared_input_gives_the_expected_output_with_the_custom_config(self):
        config = (DATA / "custom.json").read_text()
        self.assertEqual(run(config), (DATA / "expected-custom.ndjson").read_bytes())

    def test_a_bad_config_names_the_key(self):
        for text, field in [
            ('{"bogus":1}', "bogus"),
            ('{"mask":3}', "mask"),
            ('{"cards":"yes"}', "cards"),
            ('{"email_pattern":"("}', "email_pattern"),
            ('{"total_field":"message"}', "total_field"),
            ("[]", None),
        ]:
            with self.assertRaises(redact.ConfigError) as caught:
                redact.parse_config(text)
            self.assertEqual(caught.exception.field, field, text)

    def test_snapshot_and_restore_carry_the_running_total(self):
        a = redact.Redactor(redact.parse_config('{"total_field":"n"}'))
        a.redact(b'{"message":"a@example.com b@example.com"}')
        b = redact.Redactor(redact.parse_config('{"total_field":"n"}'))
        b.restore(a.snapshot())
        body, _, _ = b.redact(b'{"message":"c@example.com"}')
        self.assertEqual(body, b'{"message":"[REDACTED]","n":3}')
        with self.assertRaises(ValueError):
            b.restore(b"x")


if __name__ == "__main__":
    unittest.main()
