// A C++ host of libprovision through the RAII wrapper provision.hpp.
//
//   provision-example-cpp STATE_DIR SERVER_URL CA_FILE
//
// Accepts consent (eu), records one error and one task, flushes to the
// server, and prints the consent, the flush report, the status and the
// sent log as KEY=JSON lines. A refused call throws provision::Error.
#include <cstdio>
#include <iostream>
#include <string>

#include "provision.hpp"

int main(int argc, char **argv) {
	if (argc != 4) {
		std::cerr << "usage: " << argv[0] << " STATE_DIR SERVER_URL CA_FILE\n";
		return 2;
	}
	try {
		std::cout << "version=" << provision::version() << "\n";
		provision::Agent agent(argv[1]);
		agent.set_software("vpn", "Secure Connection", "5.14.0.1234", "premium", "en-GB");

		// Before consent nothing is recorded.
		try {
			agent.record_error("connection_failed", "E1");
			std::cerr << "an error was recorded without consent\n";
			return 1;
		} catch (const provision::Error &e) {
			if (e.status() != PROVISION_ERR_NO_CONSENT) throw;
			std::cout << "before_consent=" << e.name() << "\n";
		}

		std::cout << "consent=" << agent.accept("eu") << "\n";
		agent.record_error("connection_failed", "E42", "connect_button");
		agent.record_task("upgrade", "success", 1234, "", "", "spring-2026");

		const std::string upload = std::string("{\"server\":\"") + argv[2] + "\",\"ca_file\":\"" + argv[3] +
		                           "\",\"max_attempts\":2}";
		std::cout << "flush=" << agent.flush(upload, 60000) << "\n";
		std::cout << "status=" << agent.status() << "\n";
		std::cout << "sent=" << agent.sent() << "\n";
		agent.close();
	} catch (const provision::Error &e) {
		std::cerr << e.what() << " (" << e.name() << ")\n";
		return 1;
	}
	return 0;
}
