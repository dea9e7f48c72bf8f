/**
 * `shoal sim` as a user runs it: the built executable, JSON on stdout, one-line errors.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { collect, runShoal, startShoal } from '../testing/cli.ts'

test('shoal sim membership --json prints one object with the run and its figures', async () => {
  const result = await runShoal(['sim', 'membership', '--peers', '200', '--seed', '1', '--json', '--ms', '60000'])
  assert.equal(result.code, 0, result.stderr)
  const lines = result.stdout.trim().split('\n')
  assert.equal(lines.length, 1, 'exactly one JSON object')
  const report = JSON.parse(lines[0]!)
  assert.equal(report.scenario, 'membership')
  assert.equal(report.peers, 200)
  assert.equal(report.seed, '1')
  assert.equal(report.simulatedMs, 60_000)
  for (const field of ['events', 'wallMs', 'eventsPerSecond', 'peakRssBytes']) assert.ok(Number.isFinite(report[field]) && report[field] > 0, field)
  assert.match(report.traceHash, /^[0-9a-f]{16}$/)
  assert.equal(report.figures.largestComponentFraction, 1)
  assert.ok(report.figures.messagesDelivered > 0)
  const again = JSON.parse((await runShoal(['sim', 'membership', '--peers', '200', '--seed', '1', '--json', '--ms', '60000'])).stdout)
  assert.equal(again.traceHash, report.traceHash, 'the same seed replays the same run')
})

test('shoal sim prints a table and the replay line; --list lists the scenarios', async () => {
  const result = await runShoal(['sim', 'membership', '--peers', '50', '--seed', 'abc', '--ms', '10000'])
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stdout, /^traceHash\s+[0-9a-f]{16}$/m)
  assert.match(result.stdout, /^seed: abc \(replay: shoal sim membership --seed abc --peers 50 --ms 10000\)$/m)
  const list = await runShoal(['sim', '--list'])
  assert.equal(list.code, 0)
  assert.match(list.stdout, /^membership\s/m)
  const descriptionColumns = new Set(list.stdout.trim().split('\n').map((line) => /^\S+ +/.exec(line)![0].length))
  assert.equal(descriptionColumns.size, 1, 'every description starts in the same column, after the longest name')
})

test('an unknown scenario or a bad number is one line on stderr and exit status 1', async () => {
  for (const args of [['sim', 'no-such-scenario'], ['sim', 'membership', '--peers', 'many'], ['sim', 'membership', '--ms', '-5'], ['sim']]) {
    const result = await runShoal(args)
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`)
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr)
    assert.match(result.stderr, /^shoal: /)
    assert.equal(result.stdout, '')
  }
})

test('SIGTERM stops a long simulation at once: exit status 130, one line on stderr', async () => {
  const child = startShoal(['sim', 'swarm-flash', '--peers', '1000', '--seed', '1'])
  const result = collect(child, 30_000)
  // Long enough for the simulation thread to be running.
  await sleep(2_000)
  const signalledAt = performance.now()
  child.kill('SIGTERM')
  const { code, stderr } = await result
  assert.equal(code, 130, stderr)
  assert.equal(stderr.trim(), 'shoal: interrupted by SIGTERM')
  assert.ok(performance.now() - signalledAt < 10_000, 'stopped within 10 s')
})
