#include "outpost.h"

const char *outpost_version(void)
{
    return OUTPOST_VERSION_STRING;
}
