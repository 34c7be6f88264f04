#include "ls_test.h"
LS_TEST_MAIN()
