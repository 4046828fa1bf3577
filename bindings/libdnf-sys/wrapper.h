/* Everything of libdnf's C API that bindgen sees (libdnf.h includes every public C header). */
#include <libdnf/libdnf.h>
