/**
 * @file mcunn_config.h
 * @brief Build-wide choices of the kernels. mcucompile writes this file into every library it
 *        generates with the model's values; this default is TFLite's arithmetic.
 */
#ifndef MCUNN_CONFIG_H
#define MCUNN_CONFIG_H

/** 1: requantize with one rounding (TFLITE_SINGLE_ROUNDING); 0: TFLite's default double rounding. */
#ifndef MCU_SINGLE_ROUNDING
#define MCU_SINGLE_ROUNDING 0
#endif

#endif /* MCUNN_CONFIG_H */
