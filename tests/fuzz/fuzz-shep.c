/* fuzz-shep: the heidid <-> shepherd message decoder (both directions). */
#include <stddef.h>
#include <stdint.h>

#include "proto/shep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_doc doc;
	struct shep_msg m;
	struct proto_error err;

	pack_doc_init(&doc);
	if (shep_msg_decode(&doc, data, size, &m, &err) == 0 && m.type == SHEP_SPEC && !m.memfd) {
		volatile size_t sum = 0;

		for (size_t i = 0; i < m.spec.n_argv; i++)
			sum += m.spec.argv[i].len;
		for (size_t i = 0; i < m.spec.n_env; i++)
			sum += m.spec.env[i].len;
		(void)sum;
	}
	pack_doc_deinit(&doc);
	return 0;
}
