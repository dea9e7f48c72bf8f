/**
 * Test support: temporary folders, removed when the test ends. They live in /dev/shm when
 * the machine has it: the code paths are the same, and fsync there costs nothing, which
 * keeps tests that write thousands of blocks fast. Benchmarks use the real disk.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

export type HasAfter = Pick<TestContext, 'after'>

const cleanupStacks = new WeakMap<HasAfter, Array<() => unknown>>()

/**
 * Registers cleanup to run when the test ends, last registered first (node:test runs its
 * own `after` hooks first registered first, which would remove a folder before the node
 * that uses it is closed).
 */
export function onCleanup(t: HasAfter, cleanup: () => unknown): void {
  let stack = cleanupStacks.get(t)
  if (stack === undefined) {
    const created: Array<() => unknown> = []
    stack = created
    cleanupStacks.set(t, created)
    t.after(async () => {
      for (let next = created.pop(); next !== undefined; next = created.pop()) await next()
    })
  }
  stack.push(cleanup)
}

/** A HasAfter outside node:test, for benchmarks: close() runs what was registered on it, last first. */
export function cleanupScope(): HasAfter & { close(): Promise<void> } {
  const hooks: Array<() => unknown> = []
  const scope = {
    after: (hook: () => unknown) => void hooks.push(hook),
    close: async () => {
      for (let hook = hooks.pop(); hook !== undefined; hook = hooks.pop()) await hook()
    },
  }
  return scope as unknown as HasAfter & { close(): Promise<void> }
}

export async function tempDir(t: HasAfter, prefix = 'shoal-test-'): Promise<string> {
  const path = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix))
  onCleanup(t, () => rm(path, { recursive: true, force: true }))
  return path
}

/** Deterministic pseudo-random bytes (xorshift32), so test content is reproducible without storing it. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length)
  let state = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    bytes[i] = state & 0xff
  }
  return bytes
}

/**
 * A folder on a tmpfs of `size` (e.g. '3m'), unmounted and removed when the test ends; for
 * full-disk tests. Undefined where mounting is not allowed (not root): the test skips.
 */
export async function smallDisk(t: HasAfter, size: string): Promise<string | undefined> {
  const path = await mkdtemp(join(tmpdir(), 'shoal-small-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'ignore' })
  } catch {
    await rm(path, { recursive: true })
    return undefined
  }
  onCleanup(t, async () => {
    execFileSync('umount', [path])
    await rm(path, { recursive: true })
  })
  return path
}
