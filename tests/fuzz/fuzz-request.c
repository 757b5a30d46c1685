/* fuzz-request: the client-message decoder (all validation of client input). */
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_doc doc;
	struct msg_request req;
	struct proto_error err;

	pack_doc_init(&doc);
	if (msg_request_decode(&doc, data, size, &req, &err) == 0 && req.type == MSG_SPAWN) {
		/* touch what heidid would read */
		volatile size_t sum = 0;

		for (size_t i = 0; i < req.spawn.n_argv; i++)
			sum += req.spawn.argv[i].len + (unsigned char)req.spawn.argv[i].ptr[0];
		for (size_t i = 0; i < req.spawn.n_env; i++)
			sum += req.spawn.env[i].len;
		sum += req.spawn.cwd.len;
		(void)sum;
	}
	pack_doc_deinit(&doc);
	return 0;
}
