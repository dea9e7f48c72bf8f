/**
 * How a CLI command reaches the node: through the running daemon's API when the
 * repository names one (the `api` file), otherwise by opening the repository itself.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isShoalError, systemErrorCode } from '../core/errors.ts'
import { HttpClient } from '../api/http-client.ts'
import type { ShoalApi } from '../node/api.ts'
import { API_FILE } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'
import { RepoLock } from '../store/repo-lock.ts'

export async function daemonUrl(repoPath: string): Promise<string | undefined> {
  try {
    return (await readFile(join(repoPath, API_FILE), 'utf8')).trim()
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined
    throw error
  }
}

export async function connect(repoPath: string): Promise<ShoalApi> {
  const url = await daemonUrl(repoPath)
  if (url !== undefined) {
    const client = new HttpClient(url)
    try {
      await client.id()
      return client
    } catch (error) {
      if (!isShoalError(error, 'DAEMON_UNREACHABLE')) throw error
    }
    // The daemon died without cleaning up (kill -9): its api file is stale once the lock is free.
    if ((await RepoLock.owner(repoPath)) === undefined) await rm(join(repoPath, API_FILE), { force: true })
  }
  return ShoalNode.open(repoPath)
}
