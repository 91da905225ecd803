# The body of PREFIX/toolchain.cmake for a cross build of the device side (scripts/deps.sh
# --arch ARCH writes the file: the four OUTPOST_CROSS_* settings, then this). Debian's cross
# compiler and its C library (gcc-TRIPLET, libc6-dev-ARCH-cross), the target's Debian libraries
# unpacked into PREFIX/sysroot, and qemu-user to run what is built (try_run, ctest).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${OUTPOST_CROSS_CPU})
set(CMAKE_C_COMPILER ${OUTPOST_CROSS_TRIPLET}-gcc)

# The sysroot sits beside this file, so the cache entry works wherever it was moved to.
set(OUTPOST_CROSS_SYSROOT ${CMAKE_CURRENT_LIST_DIR}/sysroot)
set(_libdir ${OUTPOST_CROSS_SYSROOT}/usr/lib/${OUTPOST_CROSS_TRIPLET})

set(CMAKE_FIND_ROOT_PATH ${OUTPOST_CROSS_SYSROOT} /usr/${OUTPOST_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# 64-bit file offsets and time_t on 32-bit targets, for mbedTLS, lws and Outpost alike (no-ops on
# 64-bit ones): without them stat() and readdir() fail with EOVERFLOW on large files, large inode
# numbers or 64-bit directory cookies, and clocks and certificate dates end in 2038. The sysroot
# holds only the libraries' own headers and files (no C library), so it is added to the
# compiler's search rather than replacing it with --sysroot.
set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64")
string(APPEND CMAKE_C_FLAGS_INIT " -isystem ${OUTPOST_CROSS_SYSROOT}/usr/include"
       " -isystem ${OUTPOST_CROSS_SYSROOT}/usr/include/${OUTPOST_CROSS_TRIPLET}")
foreach(kind EXE SHARED MODULE)
    set(CMAKE_${kind}_LINKER_FLAGS_INIT "-L${_libdir} -Wl,-rpath-link,${_libdir}")
endforeach()

# pkg-config answers for the target: its .pc files only, paths inside the sysroot.
set(ENV{PKG_CONFIG_LIBDIR} "${_libdir}/pkgconfig:${OUTPOST_CROSS_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${OUTPOST_CROSS_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")

# Programs built here run under qemu-user: the cross C library's loader, the sysroot's libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR ${OUTPOST_CROSS_QEMU} -L /usr/${OUTPOST_CROSS_TRIPLET}
    -E LD_LIBRARY_PATH=${_libdir})
