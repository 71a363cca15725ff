/* Test-only shim for .ci/steps/26-msvc-target.sh: lets clang in MSVC mode (--target=*-windows-msvc, _MSC_VER
   defined, no __GNUC__) compile bitlinear against MinGW-w64's C library and libstdc++ headers, since MSVC's own
   headers (and its STL) are not available on Debian. It patches only what those GNU-oriented headers get wrong
   under _MSC_VER (missing GCC predefined macros, attribute placement, x86-only varargs); it changes nothing in
   bitlinear's own code paths. */
#define __GCC_ATOMIC_BOOL_LOCK_FREE 2
#define __GCC_ATOMIC_CHAR_LOCK_FREE 2
#define __GCC_ATOMIC_CHAR16_T_LOCK_FREE 2
#define __GCC_ATOMIC_CHAR32_T_LOCK_FREE 2
#define __GCC_ATOMIC_WCHAR_T_LOCK_FREE 2
#define __GCC_ATOMIC_SHORT_LOCK_FREE 2
#define __GCC_ATOMIC_INT_LOCK_FREE 2
#define __GCC_ATOMIC_LONG_LOCK_FREE 2
#define __GCC_ATOMIC_LLONG_LOCK_FREE 2
#define __GCC_ATOMIC_POINTER_LOCK_FREE 2
#define __GCC_ATOMIC_TEST_AND_SET_TRUEVAL 1
#define __restrict__ __restrict
#if defined(_M_ARM64)  /* MinGW's vadefs.h only knows x86 under _MSC_VER: take its GCC-builtin branch */
#define __GNUC__ 4
#include <vadefs.h>
#undef __GNUC__
#endif
#include <_mingw.h>
#undef __attribute__
#undef __MINGW_NOTHROW
#define __MINGW_NOTHROW
#undef __MINGW_ATTRIB_NORETURN
#define __MINGW_ATTRIB_NORETURN
#undef __MINGW_ATTRIB_DEPRECATED
#define __MINGW_ATTRIB_DEPRECATED
#define _setjmp bitlinear_shim_mingw_setjmp
#include <setjmp.h>
#undef _setjmp
#ifndef __MINGW_IMPORT
#define __MINGW_IMPORT __declspec(dllimport)
#endif
