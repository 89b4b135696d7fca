"""Python binding of libprovision, the Provision agent's C library.

Pure ctypes: nothing to compile. The library is found through the
PROVISION_LIBRARY environment variable (a path), else by its platform name
(libprovision.so, provision.dll, libprovision.dylib) on the loader's path.

    import provision
    with provision.Agent("/var/lib/myapp/provision",
                         {"software": {"type": "vpn", "name": "Secure Connection",
                                       "version": "5.14.0.1234"}}) as agent:
        agent.accept("eu")                      # when the user accepts the terms
        agent.record_error("connection_failed", "E42", "connect_button")
        agent.flush({"server": "https://telemetry.example.com"}, timeout_ms=30000)

A failed call raises ProvisionError with the status code of provision.h.
Every call releases the GIL while the library works, so threads record
concurrently.
"""

import ctypes
import ctypes.util
import json
import os
import sys

ABI_VERSION = 1

OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_NO_CONSENT = 2
ERR_VALIDATION = 3
ERR_STATE_DIR_BUSY = 4
ERR_CLOSED = 5
ERR_STORAGE = 6
ERR_UPLOAD = 7
ERR_TIMEOUT = 8
ERR_UPLOADER_STATE = 9
ERR_INTERNAL = 10


class ProvisionError(Exception):
    """A call the library refused: status is one of the ERR_* codes."""

    def __init__(self, status, name, message):
        super().__init__("%s (%s)" % (message, name))
        self.status = status
        self.name = name
        self.message = message


_c_char_pp = ctypes.POINTER(ctypes.c_void_p)  # char **, released with provision_free


def _load(path=None):
    path = path or os.environ.get("PROVISION_LIBRARY")
    if not path:
        names = {"win32": "provision.dll", "darwin": "libprovision.dylib"}
        path = ctypes.util.find_library("provision") or names.get(sys.platform, "libprovision.so")
    lib = ctypes.CDLL(path)
    agent, cstr, out, i64 = ctypes.c_uint64, ctypes.c_char_p, _c_char_pp, ctypes.c_int64
    signatures = {
        "provision_free": (None, [ctypes.c_void_p]),
        "provision_abi_version": (ctypes.c_int, []),
        "provision_version": (ctypes.c_void_p, []),
        "provision_status_name": (ctypes.c_char_p, [ctypes.c_int]),
        "provision_open": (ctypes.c_int, [cstr, cstr, ctypes.POINTER(agent), out]),
        "provision_close": (ctypes.c_int, [agent, out]),
        "provision_consent_accept": (ctypes.c_int, [agent, cstr, out, out]),
        "provision_consent_status": (ctypes.c_int, [agent, out, out]),
        "provision_consent_withdraw": (ctypes.c_int, [agent, out, out]),
        "provision_set_software": (ctypes.c_int, [agent, cstr, cstr, cstr, cstr, cstr, out]),
        "provision_set_license_provider": (ctypes.c_int, [agent, cstr, out]),
        "provision_record_error": (ctypes.c_int, [agent, cstr, cstr, cstr, out]),
        "provision_record_task": (ctypes.c_int, [agent, cstr, cstr, cstr, cstr, i64, cstr, out]),
        "provision_record_tls_der": (ctypes.c_int, [agent, ctypes.c_char_p, ctypes.c_size_t, out, out]),
        "provision_record_tls_pem": (ctypes.c_int, [agent, ctypes.c_char_p, ctypes.c_size_t, out, out]),
        "provision_scan_file": (ctypes.c_int, [agent, cstr, out, out]),
        "provision_collect": (ctypes.c_int, [agent, out, out]),
        "provision_flush": (ctypes.c_int, [agent, cstr, i64, out, out]),
        "provision_uploader_start": (ctypes.c_int, [agent, cstr, out]),
        "provision_uploader_stop": (ctypes.c_int, [agent, out]),
        "provision_dry_run": (ctypes.c_int, [agent, cstr, out, out]),
        "provision_sent": (ctypes.c_int, [agent, ctypes.c_int32, out, out]),
        "provision_status": (ctypes.c_int, [agent, out, out]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    if lib.provision_abi_version() != ABI_VERSION:
        raise ImportError("libprovision at %s has ABI %d, this binding needs %d"
                          % (path, lib.provision_abi_version(), ABI_VERSION))
    return lib


_lib = None


def library():
    """The loaded library (loaded on first use)."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _take(lib, p):
    """The text of a library string, which is then released."""
    if not p:
        return None
    try:
        return ctypes.string_at(p).decode("utf-8")
    finally:
        lib.provision_free(p)


def _enc(s):
    if s is None or s == "":
        return None
    return s.encode("utf-8")


def _settings(obj):
    if obj is None:
        return None
    if isinstance(obj, (str, bytes)):
        return obj.encode("utf-8") if isinstance(obj, str) else obj
    return json.dumps(obj).encode("utf-8")


def version():
    lib = library()
    return _take(lib, lib.provision_version())


class Agent:
    """An open state directory. Close it (or use `with`) when done."""

    def __init__(self, state_dir, config=None):
        self._lib = library()
        self._handle = ctypes.c_uint64(0)
        self._call(self._lib.provision_open, _enc(os.fspath(state_dir)), _settings(config),
                   ctypes.byref(self._handle))

    def _call(self, fn, *args, out=False):
        err = ctypes.c_void_p()
        doc = ctypes.c_void_p()
        call_args = list(args)
        if out:
            call_args.append(ctypes.byref(doc))
        call_args.append(ctypes.byref(err))
        status = fn(*call_args)
        text = _take(self._lib, doc.value) if out else None
        message = _take(self._lib, err.value)
        if status != OK:
            name = self._lib.provision_status_name(status).decode("ascii")
            raise ProvisionError(status, name, message or name)
        return json.loads(text) if text is not None else None

    @property
    def handle(self):
        return self._handle.value

    def close(self):
        """Stops the uploader, cancels uploads in progress and closes."""
        handle, self._handle = self._handle, ctypes.c_uint64(0)
        self._call(self._lib.provision_close, handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._handle.value:
            self.close()

    def accept(self, region):
        return self._call(self._lib.provision_consent_accept, self._handle, _enc(region), out=True)

    def consent(self):
        return self._call(self._lib.provision_consent_status, self._handle, out=True)

    def withdraw(self):
        return self._call(self._lib.provision_consent_withdraw, self._handle, out=True)

    def set_software(self, type=None, name=None, version=None, edition=None, localization=None):
        self._call(self._lib.provision_set_software, self._handle, _enc(type), _enc(name),
                   _enc(version), _enc(edition), _enc(localization))

    def set_license_provider(self, site):
        self._call(self._lib.provision_set_license_provider, self._handle, _enc(site))

    def record_error(self, type, code, control_id=None):
        self._call(self._lib.provision_record_error, self._handle, _enc(type), _enc(code),
                   _enc(control_id))

    def record_task(self, type, status, duration_ms, error_type=None, error_code=None,
                    campaign_id=None):
        self._call(self._lib.provision_record_task, self._handle, _enc(type), _enc(status),
                   _enc(error_type), _enc(error_code), int(duration_ms), _enc(campaign_id))

    def record_tls_der(self, der):
        """der: DER certificates one after another, leaf first."""
        return self._call(self._lib.provision_record_tls_der, self._handle, bytes(der), len(der),
                          out=True)

    def record_tls_pem(self, pem):
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        return self._call(self._lib.provision_record_tls_pem, self._handle, data, len(data),
                          out=True)

    def scan_file(self, path):
        return self._call(self._lib.provision_scan_file, self._handle, _enc(os.fspath(path)),
                          out=True)

    def collect(self):
        return self._call(self._lib.provision_collect, self._handle, out=True)

    def flush(self, upload, timeout_ms=0):
        return self._call(self._lib.provision_flush, self._handle, _settings(upload),
                          int(timeout_ms), out=True)

    def start_uploader(self, upload):
        self._call(self._lib.provision_uploader_start, self._handle, _settings(upload))

    def stop_uploader(self):
        self._call(self._lib.provision_uploader_stop, self._handle)

    def dry_run(self, upload=None):
        return self._call(self._lib.provision_dry_run, self._handle, _settings(upload), out=True)

    def sent(self, last=0):
        return self._call(self._lib.provision_sent, self._handle, int(last), out=True)

    def status(self):
        return self._call(self._lib.provision_status, self._handle, out=True)
