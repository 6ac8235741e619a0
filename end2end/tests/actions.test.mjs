import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, signIn } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function actionsOf(page, instance) {
  await page.getByRole('link', { name: instance }).click();
  await page.getByRole('heading', { name: instance, level: 1 }).waitFor();
  const items = page.getByRole('list', { name: 'Actions' }).getByRole('listitem');
  const texts = await items.allInnerTexts();
  return texts.map((t) => t.replace(/\s+/g, ' ').trim());
}

test('a viewer sees every action unavailable, each with its reason', async () => {
  const page = await newPage(browser);
  await signIn(page, 'viewer@globex.test');
  const actions = await actionsOf(page, 'globex-web');
  assert.equal(actions.length, 6);
  for (const a of actions) {
    assert.match(a, /Your role \(viewer\) may not|does not include/, a);
  }
});

test('an operator sees what the Pro plan and the status allow', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ops@globex.test');
  const actions = await actionsOf(page, 'globex-web');
  assert.deepEqual(actions, [
    'Start Cannot start while the instance is running.',
    'Stop Available',
    'Restart Available',
    'Scale Available',
    'Update configuration Available',
    'Delete The Pro plan does not include delete.',
  ]);
});

test('the free plan offers no scale or delete', async () => {
  const page = await newPage(browser);
  await signIn(page, 'admin@initech.test');
  const actions = await actionsOf(page, 'initech-sandbox');
  assert.ok(actions.includes('Scale The Free plan does not include scale.'), actions.join('\n'));
  assert.ok(actions.includes('Delete The Free plan does not include delete.'), actions.join('\n'));
});
