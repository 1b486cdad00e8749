import { html } from 'htm/preact';
import { api } from './api.ts';
import { LagChart } from './chart.ts';
import { bytes } from './format.ts';
import { usePoll } from './hooks.ts';
import type { Info, LagHistory } from './info.ts';
import { LiveTail } from './tail.ts';
import { Badge, ErrorNote, Field, Section } from './ui.ts';

export function Overview({ info, error }: { info: Info | null; error: Error | null }) {
  const history = usePoll(() => api<LagHistory>('/v1/api/slot/lag-history'), 10_000);
  return html`<div>
    <${Section} title="Overview">
      <${ErrorNote} error=${error} />
      ${
        info &&
        html`<dl class="grid">
          <${Field} id="role" label="Role" value=${html`<${Badge} state=${info.role ?? '–'} />`} />
          <${Field} id="state" label="State" value=${html`<${Badge} state=${info.state} />`} />
          <${Field} id="slot" label="Slot" value=${info.slot} />
          <${Field} id="plugin" label="Plugin" value=${info.plugin} />
          <${Field} id="database" label="Database" value=${info.database} />
          <${Field} id="confirmed" label="Confirmed LSN" value=${info.confirmedLsn} />
          <${Field} id="received" label="Received LSN" value=${info.receivedLsn} />
          <${Field} id="lag" label="Slot lag" value=${bytes(info.lagBytes)} />
          <${Field} id="wal-status" label="wal_status" value=${info.walStatus} />
          <${Field}
            id="safe-wal-size"
            label="safe_wal_size"
            value=${info.safeWalSize === null ? 'unlimited' : bytes(info.safeWalSize)}
          />
          <${Field} id="version" label="Version" value=${info.version} />
          <${Field} id="uptime" label="Uptime" value=${`${info.uptimeSeconds} s`} />
        </dl>`
      }
    <//>
    <${Section} title="Slot lag, last hour">
      <${ErrorNote} error=${history.error} />
      <${LagChart} samples=${history.data?.samples ?? []} />
    <//>
    <${Section} title="Sinks at a glance">
      <ul class="sink-summary">
        ${(info?.sinks ?? []).map(
          (s) =>
            html`<li key=${s.name} data-sink=${s.name}>
              <strong>${s.name}</strong> <${Badge} state=${s.state} />
              <span class="mono">checkpoint ${s.checkpoint ?? '–'}</span>
              <span>${s.delivered} delivered</span>
            </li>`,
        )}
      </ul>
    <//>
    <${LiveTail} compact=${true} />
  </div>`;
}
