// zlib reads the gzip-compressed IDX files (and passes raw files through unchanged).
#include <zlib.h>
