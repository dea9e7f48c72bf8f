/** What /proc says of this very process (proc-stats.ts): the parts RSS sums, and the allocator's main heap. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mainHeapResidentBytes, residentBytes, residentMemory } from './proc-stats.ts'

const MiB = 2 ** 20

test('resident memory is the sum of its anonymous, file-backed and shared parts', () => {
  const resident = residentMemory(process.pid)
  assert.equal(resident.totalBytes, resident.anonymousBytes + resident.fileBytes + resident.shmemBytes)
  assert.ok(resident.anonymousBytes > 0 && resident.fileBytes > 0, JSON.stringify(resident))
  assert.ok(Math.abs(residentBytes(process.pid) - resident.totalBytes) < 64 * MiB)
  assert.throws(() => residentMemory(2 ** 22 + 1), /ENOENT/)
})

test('buffers of 64 KiB, under the allocator\'s mmap threshold, come from its main heap', () => {
  const before = mainHeapResidentBytes(process.pid)
  // Zero-filled and written: every page resident.
  const buffers = Array.from({ length: 256 }, (_, index) => Buffer.alloc(64 * 1024, index))
  const grown = mainHeapResidentBytes(process.pid) - before
  assert.ok(grown >= 12 * MiB, `the main heap grew ${(grown / MiB).toFixed(1)} MiB for 16 MiB of buffers`)
  assert.equal(buffers.length, 256)
})
