/* Element-type codes shared by the kernels and the host: the values of
 * vd_dtype (engine/core/dtype.h), repeated here because the kernels do not
 * include engine headers.  engine/backend/cuda checks at compile time that
 * both lists agree. */
#ifndef VD_KERNELS_DTYPES_H
#define VD_KERNELS_DTYPES_H

enum vdk_dtype {
    VDK_F32 = 0,
    VDK_F16,
    VDK_BF16,
    VDK_F8_E4M3,
    VDK_F8_E5M2,
    VDK_F64,
    VDK_I8,
    VDK_U8,
    VDK_I16,
    VDK_I32,
    VDK_I64,
    VDK_BOOL,
    VDK_Q4_0,
    VDK_Q4_1,
    VDK_Q5_0,
    VDK_Q5_1,
    VDK_Q8_0,
    VDK_Q2_K,
    VDK_Q3_K,
    VDK_Q4_K,
    VDK_Q5_K,
    VDK_Q6_K,
    VDK_DTYPE_COUNT
};

#endif
