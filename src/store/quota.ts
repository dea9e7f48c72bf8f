/**
 * Byte accounting against an optional quota, shared by the block stores. Space is reserved
 * before a write starts, so concurrent writes cannot overshoot the quota together.
 */
import { ShoalError } from '../core/errors.ts'

export class ByteBudget {
  readonly quotaBytes: number | null
  blockCount = 0
  byteCount = 0
  #reservedBytes = 0

  constructor(quotaBytes: number | null) {
    this.quotaBytes = quotaBytes
  }

  reserve(bytes: number): void {
    if (this.quotaBytes !== null && this.byteCount + this.#reservedBytes + bytes > this.quotaBytes) {
      throw new ShoalError(
        'QUOTA_EXCEEDED',
        `storage quota of ${this.quotaBytes} bytes exceeded: ${this.byteCount + this.#reservedBytes} bytes stored or being written, a block of ${bytes} more does not fit`,
      )
    }
    this.#reservedBytes += bytes
  }

  release(bytes: number): void {
    this.#reservedBytes -= bytes
  }

  added(bytes: number): void {
    this.blockCount += 1
    this.byteCount += bytes
  }

  removed(bytes: number): void {
    this.blockCount -= 1
    this.byteCount -= bytes
  }
}
