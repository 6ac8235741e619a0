// Tenant members as an admin manages them: invite by link, the invitee joins, roles change,
// and the last admin stays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newPage, signIn, shot, instanceNames } from './helpers.mjs';

const ready = (page, name) => page.locator(`body[data-page-hydrated="${name}"]`).waitFor({ timeout: 20000 });

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const person = (page, email) =>
  page.getByRole('list', { name: 'Members' }).getByRole('listitem').filter({ hasText: email });

test('an admin invites someone by link; they join with that role; the last admin stays', async () => {
  const admin = await newPage(browser);
  await signIn(admin, 'admin@globex.test');
  await admin.getByRole('link', { name: 'Members' }).click();
  await admin.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
  await ready(admin, 'members');

  const invite = admin.getByRole('region', { name: 'Invite someone' });
  await invite.getByLabel('Email').fill('ivy@partner.test');
  await invite.getByLabel('Role').selectOption('operator');
  await invite.getByRole('button', { name: 'Create invitation link' }).click();
  const linkBox = admin.getByRole('textbox', { name: 'Invitation link' });
  await linkBox.waitFor();
  const link = await linkBox.inputValue();
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/invite\/[A-Za-z0-9_-]{43}$/);
  await admin.getByRole('list', { name: 'Pending invitations' }).getByText('ivy@partner.test as operator').waitFor();
  await shot(admin, 'members-invited');

  // The invitee, in their own browser, on a phone.
  const ivy = await newPage(browser, { width: 375, height: 740 });
  await ivy.goto(link);
  await ivy.getByRole('heading', { name: 'Join Globex' }).waitFor();
  await ready(ivy, 'invite');
  await ivy.getByText('You are invited as operator with the email ivy@partner.test.').waitFor();
  await ivy.getByLabel('Your name').fill('Ivy Invitee');
  await ivy.getByLabel('Password', { exact: true }).fill('ivy-long-password');
  await ivy.getByRole('button', { name: 'Accept and sign in' }).click();
  await ivy.waitForURL('**/instances');
  assert.ok((await instanceNames(ivy)).every((n) => n.startsWith('globex-')));
  await ivy.getByText('ivy@partner.test · operator').waitFor();

  // The link worked once.
  const again = await newPage(browser);
  await again.goto(link);
  await again.getByRole('heading', { name: 'Invitation not found' }).waitFor();

  // The admin sees her, and makes her a viewer.
  await admin.reload();
  await ready(admin, 'members');
  const row = person(admin, 'ivy@partner.test');
  await row.getByLabel('Role of ivy@partner.test').selectOption('viewer');
  await row.getByRole('button', { name: 'Save role' }).click();
  await admin.waitForTimeout(500);
  await admin.reload();
  assert.equal(await person(admin, 'ivy@partner.test').getByLabel('Role of ivy@partner.test').inputValue(), 'viewer');

  // The only admin cannot demote themselves; the page says why.
  await ready(admin, 'members');
  const me = person(admin, 'admin@globex.test (you)');
  await me.getByLabel('Role of admin@globex.test').selectOption('viewer');
  await me.getByRole('button', { name: 'Save role' }).click();
  await admin.getByRole('alert').filter({ hasText: 'at least one admin' }).waitFor();
  await shot(admin, 'members-last-admin');
  assert.deepEqual(admin.errors.filter((e) => !/status of 403/.test(e)), []);
  assert.deepEqual(ivy.errors, []);
});
