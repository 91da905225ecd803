/* cryptvfs passphrase stretching: Argon2id from Debian's libargon2. */
#include <argon2.h>

#include "cryptvfs_int.h"

int cryptvfs_derive_key(const char *passphrase, size_t passphrase_len,
                        const uint8_t salt[CRYPTVFS_SALT_BYTES],
                        uint8_t out_key[CRYPTVFS_KEY_BYTES])
{
    if (!passphrase || passphrase_len == 0 || !salt || !out_key)
        return CRYPTVFS_EINVAL;
    int rc = argon2id_hash_raw(CRYPTVFS_ARGON2_T_COST, CRYPTVFS_ARGON2_M_COST_KIB,
                               CRYPTVFS_ARGON2_PARALLELISM, passphrase, passphrase_len, salt,
                               CRYPTVFS_SALT_BYTES, out_key, CRYPTVFS_KEY_BYTES);
    if (rc == ARGON2_OK)
        return 0;
    return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? CRYPTVFS_ENOMEM : CRYPTVFS_ECRYPTO;
}
