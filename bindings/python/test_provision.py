"""Tests of the Python binding against a real `provision serve`.

Run by libprovision's Go tests (TestPythonBinding), which build the library,
start the server and then verify what it stored:

    PROVISION_LIBRARY=.../libprovision.so PROVISION_TEST_SERVER=https://127.0.0.1:PORT \
    PROVISION_TEST_CA=.../server.crt PROVISION_TEST_STATE=DIR PROVISION_TEST_OUT=FILE \
    python3 -m unittest -v test_provision

Standard library only.
"""

import json
import os
import tempfile
import threading
import time
import unittest

import provision

SERVER = os.environ.get("PROVISION_TEST_SERVER")
CA = os.environ.get("PROVISION_TEST_CA")
SOFTWARE = {"type": "vpn", "name": "Secure Connection", "version": "5.14.0.1234",
            "edition": "premium", "localization": "en-GB"}


def upload(**extra):
    settings = {"server": SERVER, "ca_file": CA, "max_attempts": 2}
    settings.update(extra)
    return settings


@unittest.skipUnless(SERVER and CA, "needs PROVISION_TEST_SERVER and PROVISION_TEST_CA")
class AgainstServer(unittest.TestCase):
    def test_deliver_error_and_task(self):
        """Consent, one error, one task, one flush: the Go test then checks
        that the server stored exactly these two events."""
        state = os.environ["PROVISION_TEST_STATE"]
        with provision.Agent(state, {"software": SOFTWARE}) as agent:
            consent = agent.accept("eu")
            self.assertTrue(consent["accepted"])
            agent.record_error("connection_failed", "E42", "connect_button")
            agent.record_task("upgrade", "success", 1234, campaign_id="spring-2026")
            report = agent.flush(upload(), timeout_ms=60000)
            self.assertEqual(report["accepted"], 2, report)
            status = agent.status()
            self.assertEqual(status["events_waiting"], 0)
            self.assertFalse(status["batch_in_flight"])
            sent = agent.sent()
            self.assertEqual(len(sent), 1)
            self.assertEqual(sent[0]["status"], "accepted")
            events = sent[0]["batch"]["events"]
        with open(os.environ["PROVISION_TEST_OUT"], "w") as f:
            json.dump({"installation_id": consent["installation_id"],
                       "event_ids": sorted(e["id"] for e in events)}, f)

    def test_background_uploader(self):
        with tempfile.TemporaryDirectory() as state, provision.Agent(state, {"software": SOFTWARE}) as agent:
            agent.accept("uk")
            agent.record_error("connection_failed", "E7")
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.stop_uploader()
            self.assertEqual(cm.exception.status, provision.ERR_UPLOADER_STATE)
            # 1.1 s does not divide a day, so the agent keeps it.
            agent.start_uploader(upload(interval_ms=1100))
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.start_uploader(upload())
            self.assertEqual(cm.exception.status, provision.ERR_UPLOADER_STATE)
            self.assertTrue(agent.status()["uploader_running"])
            deadline = time.monotonic() + 60
            while not agent.sent() and time.monotonic() < deadline:
                time.sleep(0.2)
            sent = agent.sent()
            self.assertTrue(sent, "the background uploader sent nothing in 60 s")
            self.assertEqual(sent[0]["status"], "accepted")
            agent.stop_uploader()
            self.assertFalse(agent.status()["uploader_running"])

    def test_tls_chain_pem_and_der(self):
        with open(CA) as f:
            pem = f.read()
        import base64
        body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
        der = base64.b64decode(body)
        with tempfile.TemporaryDirectory() as state, provision.Agent(state) as agent:
            agent.accept("eu")
            a = agent.record_tls_pem(pem)
            b = agent.record_tls_der(der)
            self.assertEqual(a["spki_sha256"], b["spki_sha256"])
            self.assertEqual(a["certificates"], 1)
            # The same certificate twice in one period is one counted event.
            self.assertEqual(agent.status()["events_waiting"], 1)
            for bad in (b"", b"not a certificate", der[:-10]):
                with self.assertRaises(provision.ProvisionError) as cm:
                    agent.record_tls_der(bad) if bad else agent.record_tls_pem(bad)
                self.assertEqual(cm.exception.status, provision.ERR_INVALID_ARGUMENT)
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.record_tls_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            self.assertEqual(cm.exception.status, provision.ERR_INVALID_ARGUMENT)


class Contract(unittest.TestCase):
    """The error contract of provision.h, without a server."""

    def test_version(self):
        self.assertTrue(provision.version().startswith("libprovision "))
        self.assertEqual(provision.library().provision_abi_version(), provision.ABI_VERSION)

    def test_nothing_before_consent(self):
        with tempfile.TemporaryDirectory() as state, provision.Agent(state) as agent:
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.record_error("connection_failed", "E42")
            self.assertEqual(cm.exception.status, provision.ERR_NO_CONSENT)
            self.assertEqual(cm.exception.name, "no_consent")
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.withdraw()
            self.assertEqual(cm.exception.status, provision.ERR_NO_CONSENT)
            self.assertEqual(agent.status()["events_waiting"], 0)

    def test_invalid_arguments(self):
        with tempfile.TemporaryDirectory() as state:
            for config in ({"softwar": {}}, {"software": {"type": "game"}}, "{", {"limits": {"max_events": -1}}):
                with self.assertRaises(provision.ProvisionError) as cm:
                    provision.Agent(state, config)
                self.assertEqual(cm.exception.status, provision.ERR_INVALID_ARGUMENT, config)
            with provision.Agent(state) as agent:
                cases = [
                    lambda: agent.accept("mars"),
                    lambda: agent.record_error("connection_failed", ""),
                    lambda: agent.record_task("upgrade", "success", -1),
                    lambda: agent.set_software(type="game"),
                    lambda: agent.set_license_provider("ftp://shop.example.com"),
                    lambda: agent.flush({"server": "http://127.0.0.1:1"}),
                    lambda: agent.flush({"server": "https://127.0.0.1:1", "pin": "xyz"}),
                    lambda: agent.start_uploader({"server": "https://127.0.0.1:1", "retries": 3}),
                    lambda: agent.scan_file(os.path.join(state, "missing")),
                ]
                for i, case in enumerate(cases):
                    with self.assertRaises(provision.ProvisionError, msg=i) as cm:
                        case()
                    self.assertEqual(cm.exception.status, provision.ERR_INVALID_ARGUMENT, (i, cm.exception))
                agent.accept("eu")
                with self.assertRaises(provision.ProvisionError) as cm:
                    agent.record_task("upgrade", "exploded", 10)
                self.assertEqual(cm.exception.status, provision.ERR_VALIDATION)
                self.assertEqual(agent.status()["events_waiting"], 0)

    def test_one_agent_per_state_dir(self):
        with tempfile.TemporaryDirectory() as state:
            with provision.Agent(state):
                with self.assertRaises(provision.ProvisionError) as cm:
                    provision.Agent(os.path.join(state, "."))
                self.assertEqual(cm.exception.status, provision.ERR_STATE_DIR_BUSY)
            provision.Agent(state).close()  # free again once closed

    def test_closed_handle(self):
        with tempfile.TemporaryDirectory() as state:
            agent = provision.Agent(state)
            handle = agent.handle
            agent.close()
            with self.assertRaises(provision.ProvisionError) as cm:
                agent.status()
            self.assertEqual(cm.exception.status, provision.ERR_CLOSED)
            lib = provision.library()
            for h in (handle, 0, 987654321):
                self.assertEqual(lib.provision_close(h, None), provision.ERR_CLOSED)
                self.assertEqual(lib.provision_record_error(h, b"t", b"c", None, None), provision.ERR_CLOSED)

    def test_concurrent_records(self):
        with tempfile.TemporaryDirectory() as state, provision.Agent(state) as agent:
            agent.accept("br")
            failures = []

            def record(worker):
                try:
                    for i in range(10):
                        agent.record_error("connection_failed", "W%d-%d" % (worker, i))
                except Exception as e:  # reported below
                    failures.append(e)

            threads = [threading.Thread(target=record, args=(w,)) for w in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(failures, [])
            self.assertEqual(agent.status()["events_waiting"], 80)
            preview = agent.dry_run()
            codes = [e["fields"]["error.code"] for b in preview["batches"] for e in b["events"]
                     if e["type"] == "ui_error"]
            self.assertEqual(sorted(codes), sorted("W%d-%d" % (w, i) for w in range(8) for i in range(10)))


if __name__ == "__main__":
    unittest.main()
