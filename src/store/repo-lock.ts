/**
 * One process per repository: `repo.lock` holds the owner's PID. A lock whose process is
 * gone (kill -9, power loss) is stale and taken over; a live owner is named in the error.
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ShoalError, systemErrorCode } from '../core/errors.ts'

const LOCK_FILE = 'repo.lock'

export class RepoLock {
  readonly path: string

  private constructor(path: string) {
    this.path = path
  }

  static async acquire(repoPath: string): Promise<RepoLock> {
    const path = join(repoPath, LOCK_FILE)
    // Two attempts: the second follows the removal of a stale lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(path, 'wx', 0o644)
        await handle.writeFile(`${process.pid}\n`)
        await handle.close()
        return new RepoLock(path)
      } catch (error) {
        if (systemErrorCode(error) !== 'EEXIST') throw error
      }
      const owner = await readOwner(path)
      if (owner !== undefined && isAlive(owner)) {
        const who = owner === process.pid ? ' (this process)' : ''
        throw new ShoalError('REPO_LOCKED', `repository ${repoPath} is locked by PID ${owner}${who}`)
      }
      await unlink(path).catch(() => {})
    }
    throw new ShoalError('REPO_LOCKED', `repository ${repoPath} is locked by another process`)
  }

  /** The PID holding the repository, or undefined when it is free or the lock is stale. */
  static async owner(repoPath: string): Promise<number | undefined> {
    const owner = await readOwner(join(repoPath, LOCK_FILE))
    return owner !== undefined && isAlive(owner) ? owner : undefined
  }

  async release(): Promise<void> {
    await unlink(this.path).catch(() => {})
  }
}

async function readOwner(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(path, 'utf8'), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined
    throw error
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return systemErrorCode(error) === 'EPERM'
  }
}
