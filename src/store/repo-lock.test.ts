import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isShoalError } from '../core/errors.ts'
import { tempDir } from '../testing/temp.ts'
import { RepoLock } from './repo-lock.ts'

test('a second lock on a held repository names the holder PID, and release frees it', async (t) => {
  const repo = await tempDir(t)
  const lock = await RepoLock.acquire(repo)
  assert.equal(await readFile(join(repo, 'repo.lock'), 'utf8'), `${process.pid}\n`)
  assert.equal(await RepoLock.owner(repo), process.pid)
  await assert.rejects(RepoLock.acquire(repo), (error) => isShoalError(error, 'REPO_LOCKED') && error.message === `repository ${repo} is locked by PID ${process.pid} (this process)`)
  await lock.release()
  assert.equal(await RepoLock.owner(repo), undefined)
  await (await RepoLock.acquire(repo)).release()
})

test('a lock left by a dead process is stale and taken over', async (t) => {
  const repo = await tempDir(t)
  const child = spawn(process.execPath, ['-e', ''])
  const deadPid = child.pid!
  await new Promise((resolve) => child.on('exit', resolve))
  await writeFile(join(repo, 'repo.lock'), `${deadPid}\n`)
  assert.equal(await RepoLock.owner(repo), undefined)
  const lock = await RepoLock.acquire(repo)
  assert.equal(await RepoLock.owner(repo), process.pid)
  await lock.release()
})

test('a lock held by another live process is refused with its PID', async (t) => {
  const repo = await tempDir(t)
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
  t.after(() => child.kill('SIGKILL'))
  await writeFile(join(repo, 'repo.lock'), `${child.pid}\n`)
  await assert.rejects(RepoLock.acquire(repo), (error) => isShoalError(error, 'REPO_LOCKED') && error.message.endsWith(`locked by PID ${child.pid}`))
})
