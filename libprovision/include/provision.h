/*
 * provision.h — the C interface of the Provision agent (libprovision).
 *
 * This header is the stable contract between libprovision and the host
 * applications that load it. The rules that keep it stable are in
 * docs/agent.md ("ABI stability"); in short: functions, their parameters
 * and the numeric values below never change within ABI version 1; new
 * functions, new status codes and new JSON keys may be added.
 *
 * Conventions shared by every function:
 *
 *  - An agent is an opaque handle (provision_agent). 0 is never a valid
 *    handle. A handle stays valid until provision_close; a closed or
 *    unknown handle gives PROVISION_ERR_CLOSED, never a crash.
 *  - Every function that can fail returns a status code (PROVISION_OK or
 *    one of PROVISION_ERR_*). When `err` is not NULL and the call fails,
 *    *err receives a NUL-terminated UTF-8 message that the caller must
 *    release with provision_free; on success *err is set to NULL.
 *  - Strings passed in are NUL-terminated UTF-8 and are copied before the
 *    call returns; the library keeps no pointer to caller memory.
 *  - Strings handed out (messages, JSON documents) are allocated by the
 *    library and must be released with provision_free, never with the
 *    host's own free (on Windows the host may use another C runtime).
 *  - Optional string parameters may be NULL or "" to mean "not given".
 *  - Every function is safe to call from any thread, concurrently.
 *  - Durations are milliseconds.
 *  - Configuration and upload settings are small JSON objects, so that new
 *    settings never change a function's signature; unknown keys are
 *    refused with PROVISION_ERR_INVALID_ARGUMENT, so a typo is never
 *    silently ignored.
 */
#ifndef PROVISION_H
#define PROVISION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && !defined(PROVISION_BUILD) && !defined(PROVISION_STATIC)
#define PROVISION_API __declspec(dllimport)
#else
#define PROVISION_API
#endif

/* The ABI version this header describes. provision_abi_version() returns
 * the version of the loaded library; a host refuses to run when the major
 * version differs. */
#define PROVISION_ABI_VERSION 1

/* Status codes. The values are part of the ABI and never change. A host
 * treats a code it does not know as a failure of unknown kind. */
#define PROVISION_OK 0
/* A parameter is missing or malformed: a NULL where a value is required,
 * a JSON setting that does not parse or names an unknown key, an unknown
 * region or software type, a negative duration, a certificate that does
 * not parse. Nothing was changed. */
#define PROVISION_ERR_INVALID_ARGUMENT 1
/* The user has not accepted the data-provision terms (or withdrew):
 * nothing is recorded, queued or sent. */
#define PROVISION_ERR_NO_CONSENT 2
/* The event is not declared by the manifest for the consented region and
 * was not recorded. */
#define PROVISION_ERR_VALIDATION 3
/* Another agent holds the state directory: one agent per state directory,
 * in this process (refused at once) or in another process (refused after
 * the agent waited up to 30 s for it). */
#define PROVISION_ERR_STATE_DIR_BUSY 4
/* The handle is 0, unknown or closed. */
#define PROVISION_ERR_CLOSED 5
/* The state directory could not be read or written. */
#define PROVISION_ERR_STORAGE 6
/* An upload did not deliver everything: what the server could not take
 * stays in the outbox for the next upload. */
#define PROVISION_ERR_UPLOAD 7
/* The call ran out of its time limit; what was not delivered stays in the
 * outbox. */
#define PROVISION_ERR_TIMEOUT 8
/* The background uploader is already running (start) or not running
 * (stop). */
#define PROVISION_ERR_UPLOADER_STATE 9
/* A defect inside the library; the message says what. The agent's state
 * on disk is unharmed (every change is one transaction). */
#define PROVISION_ERR_INTERNAL 10

/* An open agent. */
typedef uint64_t provision_agent;

/* Releases a string the library handed out. NULL is allowed. */
PROVISION_API void provision_free(char *s);

/* The ABI version of the loaded library (PROVISION_ABI_VERSION when the
 * header and the library match). */
PROVISION_API int provision_abi_version(void);

/* The library's version and the manifest version it applies, as
 * "libprovision/ABI MANIFEST GO"; release with provision_free. */
PROVISION_API char *provision_version(void);

/* A short English name of a status code ("no_consent"); a static string
 * that must NOT be freed. */
PROVISION_API const char *provision_status_name(int status);

/*
 * Opens the state directory (created with owner-only permissions if
 * missing) and stores the new handle in *agent. config_json may be NULL or
 * "{}" for the defaults, or an object with any of:
 *
 *   "software": {"type": "vpn", "name": "Secure Connection",
 *                "version": "5.14.0.1234", "edition": "premium",
 *                "localization": "en-GB"}
 *   "license_provider_site": "https://shop.example.com"
 *   "manifest_file": "/path/to/manifest.yaml"
 *   "aggregation_period_ms": 86400000
 *   "limits": {"max_events": 10000, "max_bytes": 8388608,
 *              "max_age_ms": 2592000000, "sent_entries": 200,
 *              "sent_bytes": 4194304}
 *   "log_stderr": false     (operational messages on stderr; never an
 *                            installation id, address or certificate)
 *
 * Opening collects nothing. PROVISION_ERR_STATE_DIR_BUSY when another
 * agent holds the directory.
 */
PROVISION_API int provision_open(const char *state_dir, const char *config_json,
                                 provision_agent *agent, char **err);

/* Stops the background uploader if it runs, cancels uploads in progress
 * (their data stays in the outbox), waits for calls in other threads to
 * return, and closes the state directory. The handle is invalid
 * afterwards; closing it again gives PROVISION_ERR_CLOSED. */
PROVISION_API int provision_close(provision_agent agent, char **err);

/* Consent. Each returns, when consent_json is not NULL, the consent as
 * JSON: {"accepted":true,"region":"eu","installation_id":"…",
 * "accepted_at":"…"} (release with provision_free). */

/* The user accepted the terms for region ("eu", "uk", "br", "us-ca"). */
PROVISION_API int provision_consent_accept(provision_agent agent, const char *region,
                                           char **consent_json, char **err);
/* The stored consent. */
PROVISION_API int provision_consent_status(provision_agent agent, char **consent_json,
                                           char **err);
/* The user withdrew: the outbox is emptied and a deletion request queued;
 * PROVISION_ERR_NO_CONSENT when there was no consent to withdraw. */
PROVISION_API int provision_consent_withdraw(provision_agent agent, char **consent_json,
                                             char **err);

/* What the agent reports about the host application. type is one the
 * manifest allows (vpn, security_suite, antivirus, utility) or NULL. */
PROVISION_API int provision_set_software(provision_agent agent, const char *type,
                                         const char *name, const char *version,
                                         const char *edition, const char *localization,
                                         char **err);
/* The website of the shop that sold the licence; only scheme and host are
 * kept. */
PROVISION_API int provision_set_license_provider(provision_agent agent, const char *site,
                                                 char **err);

/* Records are durable on disk when the call returns PROVISION_OK. */

/* Counts an error the application met. type and code are required. */
PROVISION_API int provision_record_error(provision_agent agent, const char *type,
                                         const char *code, const char *control_id,
                                         char **err);

/* Records the outcome of a task. type: install, remove, upgrade, update;
 * status: success, failure, cancelled, reboot_required. */
PROVISION_API int provision_record_task(provision_agent agent, const char *type,
                                        const char *status, const char *error_type,
                                        const char *error_code, int64_t duration_ms,
                                        const char *campaign_id, char **err);

/* Counts the certificate chain a TLS connection presented, leaf first.
 * der: the DER certificates one after another (len bytes, at most 1 MiB,
 * at most 16 certificates). When observation_json is not NULL it receives
 * {"subject","issuer","spki_sha256","certificates"}. */
PROVISION_API int provision_record_tls_der(provision_agent agent, const uint8_t *der,
                                           size_t len, char **observation_json,
                                           char **err);
/* The same, with the chain as PEM "CERTIFICATE" blocks, leaf first. */
PROVISION_API int provision_record_tls_pem(provision_agent agent, const char *pem,
                                           size_t len, char **observation_json,
                                           char **err);

/* Reads the Authenticode signatures of the file, or of every file under
 * the directory, and counts each signer. report_json: {"files","signed",
 * "recorded","not_pe","failed","signatures"}. */
PROVISION_API int provision_scan_file(provision_agent agent, const char *path,
                                      char **report_json, char **err);

/* Runs the daily collectors (software, operating system, licence, user
 * count) and queues what changed, and everything once a day.
 * report_json: {"queued","unchanged","skipped"}. */
PROVISION_API int provision_collect(provision_agent agent, char **report_json, char **err);

/*
 * Upload settings (upload_json), a JSON object:
 *
 *   "server": "https://telemetry.example.com"   (required; https only)
 *   "ca_file": "/etc/provision/server-ca.pem"   (instead of system roots)
 *   "pin": "0f1e…"          (hex SPKI SHA-256 of the server certificate)
 *   "encoding": "gzip"      (gzip, zstd or identity)
 *   "max_attempts": 5, "max_wait_ms": 900000, "backoff_base_ms": 1000,
 *   "backoff_max_ms": 300000, "interval_ms": 25980000,
 *   "max_batch_events": 500, "max_batch_bytes": 524288
 */

/* Sends the waiting deletion requests and events now and blocks until
 * done, or until timeout_ms passed (<= 0: no limit beyond the upload's
 * attempts). Events leave the outbox only when the server confirmed them.
 * report_json: {"batches","accepted","rejected","refused_batches",
 * "deletions","wire_bytes"}, also filled when the flush failed part-way. */
PROVISION_API int provision_flush(provision_agent agent, const char *upload_json,
                                  int64_t timeout_ms, char **report_json, char **err);

/* Starts the background uploader: it collects and flushes at jittered
 * intervals (interval_ms, default 7 h 13 min) from a random start in the
 * first interval, until provision_uploader_stop or provision_close.
 * Failures are retried at the next turn. */
PROVISION_API int provision_uploader_start(provision_agent agent, const char *upload_json,
                                           char **err);
/* Stops the background uploader and waits until it has stopped; an upload
 * in progress is cancelled and its data stays in the outbox. */
PROVISION_API int provision_uploader_stop(provision_agent agent, char **err);

/* Exactly what a collection followed by an upload would send now, as
 * JSON ({"consent","deletion_requests","batches","skipped"}); changes
 * nothing. upload_json may be NULL (batch limits only matter). */
PROVISION_API int provision_dry_run(provision_agent agent, const char *upload_json,
                                    char **preview_json, char **err);

/* The newest `last` entries of the local log of what was sent (all when
 * last <= 0), oldest first, as a JSON array; each batch exactly as sent
 * and the server's answer. */
PROVISION_API int provision_sent(provision_agent agent, int32_t last, char **sent_json,
                                 char **err);

/* The consent and the outbox counters as JSON: {"consent",
 * "events_waiting","bytes_waiting","dropped_by_bounds",
 * "deletion_requests_waiting","batch_in_flight","uploader_running",
 * "manifest_version"}. */
PROVISION_API int provision_status(provision_agent agent, char **status_json, char **err);

#ifdef __cplusplus
}
#endif

#endif /* PROVISION_H */
