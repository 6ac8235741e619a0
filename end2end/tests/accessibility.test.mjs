// Accessibility: every page each demo role can open (and the signed-out ones) passes axe-core
// with no violation at a phone's and a desktop's width, with its disclosures, confirmations and
// forms open too; and on the phone every visible control is a touch target of at least
// 44 × 44 px (WCAG 2.5.5), so nothing is left for a finger to miss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { launch, newPage, hydrated, signIn, startPortal } from './helpers.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PORT = process.env.E2E_A11Y_PORT ?? '3120';
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };
const TARGET_PX = 44;
const ROLES = [
  'admin@globex.test',
  'ops@globex.test',
  'viewer@globex.test',
  'admin@initech.test',
  'admin@umbrella.test',
];

let browser;
let portal;
before(async () => {
  // A portal of its own: the invitations and refused requests below change nobody else's data.
  portal = await startPortal(PORT);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await portal?.stop();
});

/// The pages send a nonce-based Content-Security-Policy, which would refuse the injected axe
/// script; this test's contexts alone bypass it.
const open = (viewport) => newPage(browser, viewport, { baseURL: portal.url, bypassCSP: true });

const pageReady = (page, name) =>
  page.locator(`body[data-page-hydrated="${name}"]`).waitFor({ timeout: 20000 });

/// Every axe-core violation on the page as it is now, one line per element.
async function axeViolations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: AXE });
  const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return violations.flatMap((v) =>
    v.nodes.map((n) => {
      const why = [...n.any, ...n.all, ...n.none].map((c) => c.message).find(Boolean) ?? v.help;
      return `${v.id} (${v.impact}) ${n.target.join(' ')}: ${why}`;
    }),
  );
}

/// Visible controls smaller than the target size. An element with tabindex="-1" (the progress
/// line that takes focus when an operation starts) is focused by the page, never tapped or
/// tabbed to; the skip link sits off screen until it has keyboard focus.
async function smallTargets(page) {
  return page.evaluate((min) => {
    const controls = 'a, button, input, select, textarea, summary, [role=button], [tabindex]:not([tabindex="-1"])';
    const small = [];
    for (const el of document.querySelectorAll(controls)) {
      if (!el.checkVisibility({ visibilityProperty: true })) continue;
      const r = el.getBoundingClientRect();
      if (r.right + window.scrollX <= 0 || r.bottom + window.scrollY <= 0) continue;
      if (r.width < min || r.height < min) {
        const name = (el.getAttribute('aria-label') || el.innerText || el.value || el.name || '')
          .trim().replace(/\s+/g, ' ').slice(0, 50);
        small.push(`${el.tagName.toLowerCase()} "${name}" is ${+r.width.toFixed(1)}×${+r.height.toFixed(1)} px`);
      }
    }
    return small;
  }, TARGET_PX);
}

/// Checks the page as it is now; what fails goes to `problems`, labelled with where it was.
async function check(page, where, problems) {
  const at = `${where} at ${page.viewportSize().width} px`;
  for (const v of await axeViolations(page)) problems.push(`${at}: ${v}`);
  if (page.viewportSize().width <= PHONE.width) {
    for (const s of await smallTargets(page)) problems.push(`${at}: target ${s}`);
  }
}

function assertNone(problems) {
  assert.equal(problems.length, 0, `${problems.length} accessibility problems:\n${problems.join('\n')}`);
}

/// The instance page, then each confirmation or form its enabled actions open (Start runs at
/// once, without one); Delete's is also shown refusing a wrong name.
async function checkInstance(page, href, problems) {
  await page.goto(href);
  await hydrated(page);
  const name = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
  await check(page, `instance ${name}`, problems);
  const actions = page.getByRole('list', { name: 'Actions' }).getByRole('button');
  for (const button of await actions.all()) {
    const label = (await button.innerText()).trim();
    if (label === 'Start' || !(await button.isEnabled())) continue;
    await button.click();
    const panel = page.getByRole('region', { name: new RegExp(` ${name}$`) });
    await panel.waitFor();
    if (label === 'Delete') {
      await panel.getByLabel(`Type ${name} to confirm`).fill('not-its-name');
      await panel.getByRole('button', { name: `Delete ${name}` }).click();
      await panel.getByText("Type the instance's exact name to confirm deletion.").waitFor();
    }
    await check(page, `instance ${name}, ${label} open`, problems);
    await panel.getByRole('button', { name: 'Cancel' }).click();
    await panel.waitFor({ state: 'detached' });
  }
}

for (const email of ROLES) {
  test(`${email}: every page passes axe-core, with 44 px targets on a phone`, async () => {
    const problems = [];
    for (const viewport of [PHONE, DESKTOP]) {
      const page = await open(viewport);
      await signIn(page, email);
      await hydrated(page);
      const nav = page.getByRole('navigation', { name: 'Portico' });
      const pages = {
        create: await page.getByRole('link', { name: 'New instance' }).count(),
        members: await nav.getByRole('link', { name: 'Members' }).count(),
        tokens: await nav.getByRole('link', { name: 'API tokens' }).count(),
        webhooks: await nav.getByRole('link', { name: 'Webhooks' }).count(),
        audit: await nav.getByRole('link', { name: 'Audit log' }).count(),
      };
      const notAvailable = page.getByText(/^Not available: /);
      if (await notAvailable.count()) {
        await notAvailable.first().click();
        await check(page, 'instances, a "Not available" disclosure open', problems);
      } else {
        await check(page, 'instances', problems);
      }

      // The instance with the most confirmations and forms to open: one the role may delete,
      // else a running one.
      const cards = page.getByRole('list', { name: 'Instances' }).getByRole('listitem');
      const deletable = cards.filter({ has: page.getByRole('link', { name: 'Delete…' }) });
      const running = cards.filter({ has: page.getByText('Running', { exact: true }) });
      const card = (await deletable.count()) ? deletable.first() : running.first();
      await checkInstance(page, await card.getByRole('heading').getByRole('link').getAttribute('href'), problems);

      if (pages.create) {
        await page.goto('/instances/new');
        await hydrated(page);
        await page.getByRole('button', { name: 'Create instance' }).waitFor();
        await check(page, 'new instance', problems);
      }
      if (pages.members) {
        await page.goto('/members');
        await pageReady(page, 'members');
        await check(page, 'members', problems);
        await page.getByRole('list', { name: 'Members' }).getByText('Remove…').first().click();
        await check(page, 'members, a "Remove…" disclosure open', problems);
      }
      if (pages.tokens) {
        await page.goto('/tokens');
        await pageReady(page, 'tokens');
        await check(page, 'API tokens', problems);
      }
      if (pages.webhooks) {
        await page.goto('/webhooks');
        await pageReady(page, 'webhooks');
        await check(page, 'webhooks', problems);
      }
      if (pages.audit) {
        await page.goto('/audit');
        // Rendered on the server only: nothing of it hydrates.
        await hydrated(page);
        await check(page, 'audit log', problems);
      }
      await page.context().close();
    }
    assertNone(problems);
  });
}

test('signed out: sign-in (with its error), an unknown page and an unknown invitation', async () => {
  const problems = [];
  for (const viewport of [PHONE, DESKTOP]) {
    const page = await open(viewport);
    await page.goto('/sign-in');
    await hydrated(page);
    await check(page, 'sign-in', problems);
    await page.getByLabel('Email').fill('admin@globex.test');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    await check(page, 'sign-in, refused', problems);
    await page.goto('/no-such-page');
    await hydrated(page);
    await check(page, 'not found', problems);
    await page.goto('/invite/no-such-invitation');
    await page.getByRole('heading', { name: 'Invitation not found' }).waitFor();
    // No form, so no island: nothing to wait for but the page.
    await hydrated(page);
    await check(page, 'unknown invitation', problems);
    await page.context().close();
  }
  assertNone(problems);
});

test('an invitation: the link the admin is shown, and the page it opens', async () => {
  const problems = [];
  for (const viewport of [PHONE, DESKTOP]) {
    const admin = await open(viewport);
    await signIn(admin, 'admin@globex.test');
    await admin.goto('/members');
    await pageReady(admin, 'members');
    const invite = admin.getByRole('region', { name: 'Invite someone' });
    await invite.getByLabel('Email').fill(`a11y-${viewport.width}@partner.test`);
    await invite.getByRole('button', { name: 'Create invitation link' }).click();
    const link = admin.getByRole('textbox', { name: 'Invitation link' });
    await link.waitFor();
    await check(admin, 'members, an invitation link shown', problems);

    const invitee = await open(viewport);
    await invitee.goto(await link.inputValue());
    await invitee.getByRole('heading', { name: 'Join Globex' }).waitFor();
    await pageReady(invitee, 'invite');
    await check(invitee, 'invitation', problems);
    await admin.context().close();
    await invitee.context().close();
  }
  assertNone(problems);
});
