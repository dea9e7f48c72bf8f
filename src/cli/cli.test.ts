/**
 * The `shoal` executable as a user meets it: real processes, exit statuses, one-line
 * errors, the daemon found through the repository, Ctrl-C and kill -9 in the middle of an
 * add, a full disk.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { blockKey, parseCid } from '../core/content/cid.ts'
import { collect, LOOPBACK_NETWORK, runShoal, SHOAL_BIN, SHOAL_NODE_FLAGS, startShoal, waitForLine, type CliResult } from '../testing/cli.ts'
import { onCleanup, pseudoRandomBytes, smallDisk, tempDir } from '../testing/temp.ts'
import { buildProgram } from './program.ts'

const MiB = 1024 * 1024

async function newRepo(t: test.TestContext): Promise<{ repo: string; dir: string; shoal: (...args: string[]) => Promise<CliResult> }> {
  const dir = await tempDir(t)
  const repo = join(dir, 'repo')
  const shoal = (...args: string[]) => runShoal(['--repo', repo, ...args])
  assert.equal((await shoal('init')).code, 0)
  return { repo, dir, shoal }
}

/** A user error: exit status 1 and exactly one line on stderr, which matches. */
function assertUserError(result: CliResult, pattern: RegExp): void {
  assert.equal(result.code, 1, `exit status of: ${result.stderr}`)
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, `one line: ${result.stderr}`)
  assert.match(result.stderr, pattern)
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace')
}

test('the tests start shoal with the Node flags of its shebang and of npm start', async () => {
  const shebang = (await readFile(SHOAL_BIN, 'utf8')).split('\n')[0]
  assert.equal(shebang, `#!/usr/bin/env -S node ${SHOAL_NODE_FLAGS.join(' ')}`)
  const packageJson = JSON.parse(await readFile(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { scripts: Record<string, string> }
  assert.ok(packageJson.scripts.start!.startsWith(`node ${SHOAL_NODE_FLAGS.join(' ')} `), packageJson.scripts.start)
})

test('every command has --help', async () => {
  const program = buildProgram({ stdout: process.stdout, stdin: process.stdin, signal: new AbortController().signal })
  const paths: string[][] = []
  const visit = (command: typeof program, prefix: string[]) => {
    for (const sub of command.commands) {
      paths.push([...prefix, sub.name()])
      visit(sub, [...prefix, sub.name()])
    }
  }
  visit(program, [])
  assert.ok(paths.length >= 17, `found ${paths.length} commands`)
  for (const path of [[], ...paths]) {
    const result = await runShoal([...path, '--help'])
    assert.equal(result.code, 0, path.join(' '))
    assert.match(result.stdout, /^Usage: shoal/, path.join(' '))
  }
})

test('init, id, add, cat, get, ls, stat, pin, gc and repo stat work without a daemon', async (t) => {
  const { dir, shoal, repo } = await newRepo(t)
  const id = await shoal('id')
  assert.match(id.stdout.trim(), /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/)
  assert.equal((await stat(join(repo, 'keys', 'self.key'))).mode & 0o777, 0o600)
  assert.equal(JSON.parse((await shoal('id', '--json')).stdout).peerId, id.stdout.trim())

  const tree = join(dir, 'tree')
  await mkdir(join(tree, 'sub'), { recursive: true })
  await writeFile(join(tree, 'a.txt'), 'alpha\n')
  await writeFile(join(tree, 'sub', 'big.bin'), pseudoRandomBytes(2 * MiB + 5, 1))
  const added = await shoal('add', tree)
  assert.equal(added.code, 0, added.stderr)
  assert.equal(added.stderr, '', 'nothing on stderr when it is not a terminal')
  const [, root] = /^added (\S+) tree$/m.exec(added.stdout) ?? []
  assert.ok(root)
  assert.equal((await shoal('add', '-q', join(tree, 'a.txt'))).stdout.trim(), JSON.parse((await shoal('add', '--json', join(tree, 'a.txt'))).stdout)[0].cid)
  assert.equal((await shoal('cat', `${root}/a.txt`)).stdout, 'alpha\n')
  const fromStdin = CID.createV1(0x55, Digest.create(0x12, createHash('sha256').update('from stdin').digest())).toString()
  assert.equal((await runShoal(['--repo', repo, 'add', '-q', '-'], { input: 'from stdin' })).stdout.trim(), fromStdin)
  assert.equal((await shoal('cat', fromStdin)).stdout, 'from stdin')

  const out = join(dir, 'out')
  assert.equal((await shoal('get', root!, '-o', out)).code, 0)
  assert.deepEqual(await readFile(join(out, 'sub', 'big.bin')), await readFile(join(tree, 'sub', 'big.bin')))
  assertUserError(await shoal('get', root!, '-o', out), /already exists/)
  const listing = JSON.parse((await shoal('ls', '--json', root!)).stdout) as Array<{ name: string; type: string }>
  assert.deepEqual(listing.map((entry) => `${entry.name}:${entry.type}`), ['a.txt:file', 'sub:directory'])
  assert.match((await shoal('ls', root!)).stdout, /sub\/$/m)
  assert.equal(JSON.parse((await shoal('stat', '--json', `${root}/sub/big.bin`)).stdout).size, 2 * MiB + 5)
  assert.equal((await shoal('cat', `${root}/sub/big.bin`, '--offset', String(2 * MiB), '--length', '3')).stdout.length, 3)

  const pins = JSON.parse((await shoal('pin', 'ls', '--json')).stdout) as Array<{ cid: string }>
  assert.equal(pins.length, 3)
  for (const pin of pins) assert.equal((await shoal('pin', 'rm', pin.cid)).code, 0)
  const statBefore = JSON.parse((await shoal('repo', 'stat', '--json')).stdout)
  assert.ok(statBefore.blockCount > 0)
  const gc = JSON.parse((await shoal('gc', '--json')).stdout)
  assert.equal(gc.removedBlockCount, statBefore.blockCount)
  assert.deepEqual(JSON.parse((await shoal('repo', 'stat', '--json')).stdout), { ...statBefore, blockCount: 0, byteCount: 0, pinCount: 0 })
})

test('bad input: one line on stderr and exit status 1', async (t) => {
  const { shoal, dir, repo } = await newRepo(t)
  assertUserError(await shoal('cat', 'not-a-cid'), /^shoal: invalid CID 'not-a-cid'/)
  assertUserError(await shoal('cat', 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'), /block bafkrei\S+ not found/)
  assertUserError(await shoal('add', join(dir, 'missing.txt')), /no such file or folder: .*missing\.txt/)
  assertUserError(await shoal('add', '--cid-profile', 'v9', dir), /argument 'v9' is invalid/)
  assertUserError(await shoal('frobnicate'), /unknown command 'frobnicate'/)
  assertUserError(await shoal('cat'), /missing required argument/)
  assertUserError(await shoal('config', 'set', 'storage.quota', '1'), /unknown config key 'storage\.quota'/)
  assertUserError(await shoal('config', 'set', 'storage.quotaBytes', 'lots'), /invalid value for 'storage\.quotaBytes'/)
  assertUserError(await shoal('init'), /already exists/)
  assertUserError(await runShoal(['--repo', join(dir, 'nowhere'), 'id']), /no repository at .*nowhere; run: shoal init/)
  await writeFile(join(repo, 'config.json'), JSON.stringify({ api: { address: '127.0.0.1:5080' }, extra: true }))
  assertUserError(await shoal('id'), /config\.json: unknown key 'extra'/)
})

test('config get, set and show', async (t) => {
  const { shoal } = await newRepo(t)
  assert.equal((await shoal('config', 'get', 'import.cidProfile')).stdout, 'unixfs-v1-2025\n')
  assert.equal((await shoal('config', 'set', 'storage.quotaBytes', '2MiB')).code, 0)
  assert.equal((await shoal('config', 'get', 'storage.quotaBytes')).stdout, `${2 * MiB}\n`)
  assert.equal(JSON.parse((await shoal('config', 'show')).stdout).storage.quotaBytes, 2 * MiB)
})

test('a full quota fails the add cleanly and leaves the repository as it was', async (t) => {
  const { shoal, dir } = await newRepo(t)
  await shoal('config', 'set', 'storage.quotaBytes', '1MiB')
  await writeFile(join(dir, 'big'), pseudoRandomBytes(2 * MiB, 2))
  const before = (await shoal('repo', 'stat', '--json')).stdout
  assertUserError(await shoal('add', join(dir, 'big')), /storage quota of 1048576 bytes exceeded/)
  assert.equal((await shoal('repo', 'stat', '--json')).stdout, before)
})

test('a corrupt block on disk is named and not served', async (t) => {
  const { shoal, dir, repo } = await newRepo(t)
  await writeFile(join(dir, 'f'), 'some content\n')
  const cid = (await shoal('add', '-q', join(dir, 'f'))).stdout.trim()
  const key = blockKey(parseCid(cid))
  await writeFile(join(repo, 'blocks', key.slice(-3, -1), `${key}.data`), 'some c0ntent\n')
  const result = await shoal('cat', cid)
  assertUserError(result, new RegExp(`block ${cid} is corrupt`))
  assert.equal(result.stdout, '', 'no byte of the corrupt block is written')
})

test('the daemon serves the API; commands find it through the repository; it cleans up on SIGTERM', async (t) => {
  const { shoal, repo, dir } = await newRepo(t)
  const daemon = startShoal(['--repo', repo, 'daemon', '--api', '127.0.0.1:0', ...LOOPBACK_NETWORK])
  onCleanup(t, () => daemon.kill('SIGKILL'))
  const [, url] = await waitForLine(daemon, /API listening on (http:\S+)/)
  assert.equal((await readFile(join(repo, 'api'), 'utf8')).trim(), url)
  // The daemon holds the lock, so these succeed only by going through its API.
  await writeFile(join(dir, 'f'), 'through the daemon\n')
  const cid = (await shoal('add', '-q', join(dir, 'f'))).stdout.trim()
  assert.equal((await shoal('cat', cid)).stdout, 'through the daemon\n')
  assert.equal(JSON.parse((await shoal('repo', 'stat', '--json')).stdout).pinCount, 1)
  const response = await fetch(`${url}/api/v0/repo/stat`)
  assert.equal(((await response.json()) as { pinCount: number }).pinCount, 1)
  assertUserError(await shoal('cat', 'nonsense'), /invalid CID/)
  daemon.kill('SIGTERM')
  const exit = await collect(daemon)
  assert.equal(exit.code, 0)
  assert.equal(existsSync(join(repo, 'api')), false)
  assert.equal(existsSync(join(repo, 'repo.lock')), false)
  assert.equal((await shoal('cat', cid)).stdout, 'through the daemon\n', 'without the daemon the CLI opens the repository itself')
})

test('a repository in use by another process is refused with its PID', async (t) => {
  const { repo, shoal } = await newRepo(t)
  // `add -` holds the repository open while it waits for stdin.
  const holder = spawn(process.execPath, [SHOAL_BIN, '--repo', repo, 'add', '-'], { stdio: ['pipe', 'ignore', 'ignore'] })
  onCleanup(t, () => holder.kill('SIGKILL'))
  await waitFor(async () => existsSync(join(repo, 'repo.lock')))
  assertUserError(await shoal('repo', 'stat'), new RegExp(`repository ${repo} is locked by PID ${holder.pid}$`, 'm'))
  holder.stdin.end('done')
})

/** `shoal add -` fed 25 MiB on a stdin kept open, once its first batch of 10 leaves is on disk (the importer writes in batches of 10). */
async function addInterruptedFromStdin(t: test.TestContext, repo: string, seed: number): Promise<ChildProcess> {
  const adder = spawn(process.execPath, [SHOAL_BIN, '--repo', repo, 'add', '-'], { stdio: ['pipe', 'pipe', 'pipe'] })
  onCleanup(t, () => adder.kill('SIGKILL'))
  adder.stdin!.on('error', () => {}) // EPIPE: it stops reading when interrupted
  adder.stdin!.write(pseudoRandomBytes(25 * MiB, seed))
  await waitFor(async () => (await blockFileCount(repo)) >= 10)
  return adder
}

test('Ctrl-C in the middle of an add: exit 130, one line, nothing added', async (t) => {
  const { repo, shoal } = await newRepo(t)
  const before = (await shoal('repo', 'stat', '--json')).stdout
  const adder = await addInterruptedFromStdin(t, repo, 3)
  adder.kill('SIGINT')
  const result = await collect(adder)
  assert.equal(result.code, 130)
  assert.equal(result.stderr, 'shoal: add interrupted; nothing was added\n')
  assert.equal((await shoal('repo', 'stat', '--json')).stdout, before)
})

test('kill -9 in the middle of an add leaves a consistent repository that the next command opens', async (t) => {
  const { repo, shoal } = await newRepo(t)
  const adder = await addInterruptedFromStdin(t, repo, 4)
  adder.kill('SIGKILL')
  await new Promise((resolve) => adder.on('exit', resolve))
  assert.ok(existsSync(join(repo, 'repo.lock')), 'the lock is left behind')
  const verify = JSON.parse((await shoal('repo', 'verify', '--json')).stdout)
  assert.deepEqual(verify.corrupt, [], 'every block under its CID is whole')
  assert.ok(verify.blockCount >= 10)
  assert.deepEqual(JSON.parse((await shoal('pin', 'ls', '--json')).stdout), [])
  assert.equal(JSON.parse((await shoal('gc', '--json')).stdout).removedBlockCount, verify.blockCount, 'the unpinned leftovers are garbage')
})

test('a full disk fails the add with one line and leaves the repository consistent', async (t) => {
  const mountPoint = await smallDisk(t, '3m')
  if (mountPoint === undefined) return t.skip('needs root to mount a small tmpfs')
  const repo = join(mountPoint, 'repo')
  const shoal = (...args: string[]) => runShoal(['--repo', repo, ...args])
  assert.equal((await shoal('init')).code, 0)
  const source = join(await tempDir(t), 'big')
  await writeFile(source, pseudoRandomBytes(6 * MiB, 5))
  const before = (await shoal('repo', 'stat', '--json')).stdout
  assertUserError(await shoal('add', source), /disk full/)
  assert.equal((await shoal('repo', 'stat', '--json')).stdout, before)
  assert.deepEqual(JSON.parse((await shoal('repo', 'verify', '--json')).stdout).corrupt, [])
})

test('a progress bar with bytes, rate and ETA is drawn when stderr is a terminal', async (t) => {
  if (!existsSync('/usr/bin/script')) return t.skip('needs script(1) for a pseudo-terminal')
  const { repo, dir } = await newRepo(t)
  await writeFile(join(dir, 'big'), pseudoRandomBytes(64 * MiB, 6))
  const command = `'${process.execPath}' '${SHOAL_BIN}' --repo '${repo}' add -q '${join(dir, 'big')}'`
  const output = execFileSync('/usr/bin/script', ['-qefc', command, '/dev/null'], { encoding: 'utf8' })
  assert.match(output, /adding .*MiB \/ 64\.0 MiB \| .*\/s \| ETA/)
})

test('npm start initialises the default repository and runs the daemon', async (t) => {
  const home = await tempDir(t)
  const root = fileURLToPath(new URL('../../../', import.meta.url))
  const npm = spawn('npm', ['start', '--silent', '--', '--api', '127.0.0.1:0', ...LOOPBACK_NETWORK], {
    cwd: root,
    env: { ...process.env, HOME: home, SHOAL_REPO: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  onCleanup(t, () => npm.kill('SIGKILL'))
  await waitForLine(npm, /daemon ready/, 60_000)
  const repo = join(home, '.shoal')
  assert.ok(existsSync(join(repo, 'config.json')), 'the default repository was created')
  const id = await runShoal(['id'], { env: { HOME: home, SHOAL_REPO: '' } })
  assert.match(id.stdout, /^12D3KooW/)
  process.kill(Number((await readFile(join(repo, 'repo.lock'), 'utf8')).trim()), 'SIGTERM')
  await collect(npm)
  assert.equal(existsSync(join(repo, 'api')), false)
})

async function blockFileCount(repo: string): Promise<number> {
  const { readdir } = await import('node:fs/promises')
  let count = 0
  for (const shard of await readdir(join(repo, 'blocks'))) {
    if (!shard.startsWith('_')) count += (await readdir(join(repo, 'blocks', shard))).length
  }
  return count
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(20)
  }
}
