import { ShoalError } from '../core/errors.ts'

/** An integer option's value, from `min` to `max`; anything else is a one-line INVALID_ARGUMENT naming the option. */
export function parseInteger(text: string, option: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ShoalError('INVALID_ARGUMENT', `${option} expects an integer from ${min} to ${max}, got '${text}'`)
  }
  return value
}
