// provision.hpp — a header-only C++17 wrapper of provision.h: the agent as
// a move-only RAII object that closes itself, results as std::string, and
// failures as provision::Error carrying the status code.
//
// It adds no ABI of its own: everything goes through the C functions, so a
// host built with any C++ compiler or standard library can use any build
// of libprovision.
#ifndef PROVISION_HPP
#define PROVISION_HPP

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "provision.h"

namespace provision {

// Error is a failed call: the status code (PROVISION_ERR_*) and the
// library's message.
class Error : public std::runtime_error {
public:
	Error(int status, const std::string &what) : std::runtime_error(what), status_(status) {}
	int status() const noexcept { return status_; }
	// The short name of the code, such as "no_consent".
	const char *name() const noexcept { return provision_status_name(status_); }

private:
	int status_;
};

namespace detail {

// Owned is a string the library handed out, released with provision_free.
struct Free {
	void operator()(char *s) const noexcept { provision_free(s); }
};
using Owned = std::unique_ptr<char, Free>;

inline std::string take(char *s) {
	Owned owned(s);
	return owned ? std::string(owned.get()) : std::string();
}

inline void check(int status, char *err, const char *what) {
	Owned msg(err);
	if (status != PROVISION_OK) {
		throw Error(status, std::string(what) + ": " + (msg ? msg.get() : provision_status_name(status)));
	}
}

inline const char *opt(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }

} // namespace detail

// The version string of the loaded library.
inline std::string version() { return detail::take(provision_version()); }

// Agent is one open state directory. Closing happens in the destructor;
// call close() to see its error.
class Agent {
public:
	// Opens the state directory; config_json as provision_open documents.
	explicit Agent(const std::string &state_dir, const std::string &config_json = "{}") {
		if (provision_abi_version() != PROVISION_ABI_VERSION) {
			throw Error(PROVISION_ERR_INVALID_ARGUMENT, "libprovision: ABI version mismatch");
		}
		char *err = nullptr;
		detail::check(provision_open(state_dir.c_str(), config_json.c_str(), &handle_, &err), err, "open");
	}
	~Agent() {
		if (handle_ != 0) provision_close(handle_, nullptr);
	}
	Agent(const Agent &) = delete;
	Agent &operator=(const Agent &) = delete;
	Agent(Agent &&other) noexcept : handle_(std::exchange(other.handle_, 0)) {}
	Agent &operator=(Agent &&other) noexcept {
		if (this != &other) {
			if (handle_ != 0) provision_close(handle_, nullptr);
			handle_ = std::exchange(other.handle_, 0);
		}
		return *this;
	}

	void close() {
		char *err = nullptr;
		int status = provision_close(std::exchange(handle_, 0), &err);
		detail::check(status, err, "close");
	}

	// Each of these returns the JSON document the C function hands out.
	std::string accept(const std::string &region) {
		return json_call("consent accept", [&](char **out, char **err) {
			return provision_consent_accept(handle_, region.c_str(), out, err);
		});
	}
	std::string consent() {
		return json_call("consent status", [&](char **out, char **err) { return provision_consent_status(handle_, out, err); });
	}
	std::string withdraw() {
		return json_call("consent withdraw", [&](char **out, char **err) { return provision_consent_withdraw(handle_, out, err); });
	}

	void set_software(const std::string &type, const std::string &name, const std::string &version,
	                  const std::string &edition = "", const std::string &localization = "") {
		char *err = nullptr;
		detail::check(provision_set_software(handle_, detail::opt(type), detail::opt(name), detail::opt(version),
		                                     detail::opt(edition), detail::opt(localization), &err),
		              err, "set software");
	}

	void record_error(const std::string &type, const std::string &code, const std::string &control_id = "") {
		char *err = nullptr;
		detail::check(provision_record_error(handle_, type.c_str(), code.c_str(), detail::opt(control_id), &err), err,
		              "record error");
	}

	void record_task(const std::string &type, const std::string &status, std::int64_t duration_ms,
	                 const std::string &error_type = "", const std::string &error_code = "",
	                 const std::string &campaign_id = "") {
		char *err = nullptr;
		detail::check(provision_record_task(handle_, type.c_str(), status.c_str(), detail::opt(error_type),
		                                    detail::opt(error_code), duration_ms, detail::opt(campaign_id), &err),
		              err, "record task");
	}

	// DER certificates one after another, leaf first.
	std::string record_tls_der(const std::uint8_t *der, std::size_t len) {
		return json_call("record tls", [&](char **out, char **err) { return provision_record_tls_der(handle_, der, len, out, err); });
	}
	std::string record_tls_pem(const std::string &pem) {
		return json_call("record tls", [&](char **out, char **err) {
			return provision_record_tls_pem(handle_, pem.data(), pem.size(), out, err);
		});
	}
	std::string scan_file(const std::string &path) {
		return json_call("scan file", [&](char **out, char **err) { return provision_scan_file(handle_, path.c_str(), out, err); });
	}
	std::string collect() {
		return json_call("collect", [&](char **out, char **err) { return provision_collect(handle_, out, err); });
	}
	std::string flush(const std::string &upload_json, std::int64_t timeout_ms) {
		return json_call("flush", [&](char **out, char **err) {
			return provision_flush(handle_, upload_json.c_str(), timeout_ms, out, err);
		});
	}
	void start_uploader(const std::string &upload_json) {
		char *err = nullptr;
		detail::check(provision_uploader_start(handle_, upload_json.c_str(), &err), err, "start uploader");
	}
	void stop_uploader() {
		char *err = nullptr;
		detail::check(provision_uploader_stop(handle_, &err), err, "stop uploader");
	}
	std::string dry_run(const std::string &upload_json = "") {
		return json_call("dry run", [&](char **out, char **err) {
			return provision_dry_run(handle_, detail::opt(upload_json), out, err);
		});
	}
	std::string sent(std::int32_t last = 0) {
		return json_call("sent", [&](char **out, char **err) { return provision_sent(handle_, last, out, err); });
	}
	std::string status() {
		return json_call("status", [&](char **out, char **err) { return provision_status(handle_, out, err); });
	}

private:
	template <typename F> std::string json_call(const char *what, F f) {
		char *out = nullptr, *err = nullptr;
		int status = f(&out, &err);
		std::string result = detail::take(out);
		detail::check(status, err, what);
		return result;
	}

	provision_agent handle_ = 0;
};

} // namespace provision

#endif // PROVISION_HPP
