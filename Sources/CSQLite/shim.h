// The benchmark's results store is a plain SQLite database (Debian's libsqlite3-dev).
#include <sqlite3.h>
