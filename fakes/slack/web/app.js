// The emulator's channel view. Plain JS, no build step.
//
// Safety: text from the bot or from people only ever reaches the page through
// textContent / createTextNode and vetted attributes, never through innerHTML.
// Slack's mrkdwn is parsed into DOM nodes; "&lt;" shows as "<".
"use strict";

(() => {
  const POLL_MS = 400;
  const params = new URLSearchParams(location.search);
  const ui = {
    data: null,
    version: null,
    user: params.get("user"),
    channel: params.get("channel"),
    focusTs: params.get("ts"),
    tab: "channel", // or "home"
    thread: null, // {channel, ts} the composer replies into
    drafts: {}, // modal inputs: "view/block/action" -> value
    modalKey: null,
    warningsOpen: false,
    scrolledOnce: false,
    pollTimer: null,
    homeError: null,
  };
  // Resolved by the first state the page receives: a message typed before then waits
  // for it instead of being dropped (a slow machine's first poll can take a while).
  let markLoaded;
  const loaded = new Promise((resolve) => { markLoaded = resolve; });

  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️", eyes: "👀",
    gear: "⚙️", hourglass_flowing_sand: "⏳", hourglass: "⌛", arrows_counterclockwise: "🔄",
    white_circle: "⚪", black_circle: "⚫", large_blue_circle: "🔵", red_circle: "🔴",
    large_green_circle: "🟢", large_yellow_circle: "🟡", link: "🔗", repeat: "🔁",
    no_entry_sign: "🚫", no_entry: "⛔", hammer_and_wrench: "🛠️", rocket: "🚀", tada: "🎉",
    "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎", robot_face: "🤖", memo: "📝",
    mag: "🔍", fire: "🔥", bulb: "💡", construction: "🚧", speech_balloon: "💬",
    package: "📦", test_tube: "🧪", lock: "🔒", moneybag: "💰", stopwatch: "⏱️", zap: "⚡",
    sparkles: "✨", wave: "👋", question: "❓", exclamation: "❗", information_source: "ℹ️",
    heavy_plus_sign: "➕", heavy_minus_sign: "➖", arrow_right: "➡️", pencil2: "✏️",
    hammer: "🔨", wrench: "🔧", clipboard: "📋", inbox_tray: "📥", outbox_tray: "📤",
    checkered_flag: "🏁", stop_sign: "🛑", octagonal_sign: "🛑", hourglass_done: "⌛",
    white_large_square: "⬜", large_orange_circle: "🟠", ballot_box_with_check: "☑️",
    thinking_face: "🤔", raised_hands: "🙌", pray: "🙏", bug: "🐛", computer: "💻",
    page_facing_up: "📄", scroll: "📜", recycle: "♻️", skull: "💀", boom: "💥",
    large_red_square: "🟥", large_green_square: "🟩", large_yellow_square: "🟨",
    arrow_forward: "▶️", double_vertical_bar: "⏸️", dollar: "💵", chart_with_upwards_trend: "📈",
  };

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) append(node, child);
    return node;
  }

  function append(parent, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) child.forEach((c) => append(parent, c));
    else if (typeof child === "string") parent.appendChild(document.createTextNode(child));
    else parent.appendChild(child);
  }

  function $(id) { return document.getElementById(id); }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = { ok: false, error: `HTTP ${response.status}` }; }
    schedulePoll(0);
    return answer;
  }

  // ---------------------------------------------------------------- lookups

  function userById(id) { return (ui.data && ui.data.users.find((u) => u.id === id)) || null; }
  function channelById(id) { return (ui.data && ui.data.channels.find((c) => c.id === id)) || null; }
  function isBot(id) { return ui.data && id === ui.data.bot.user_id; }

  function timeOf(ts) {
    const d = new Date(parseFloat(ts) * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function emoji(name) { return EMOJI[name] || `:${name}:`; }

  // ---------------------------------------------------------------- mrkdwn

  function decode(text) {
    return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function safeHref(url) {
    return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
  }

  // <...> control sequences: mentions, channels, specials, links
  function control(body) {
    const bar = body.indexOf("|");
    const target = bar === -1 ? body : body.slice(0, bar);
    const label = bar === -1 ? "" : body.slice(bar + 1);
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const user = userById(id);
      const name = user ? user.name : label || id;
      const mine = ui.data && id === ui.data.me;
      return el("span", { class: mine ? "mention me" : "mention", "data-testid": "mention", "data-user-id": id, text: `@${name}` });
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const chan = channelById(id);
      return el("span", { class: "mention", "data-testid": "channel-mention", text: `#${label || (chan ? chan.name : id)}` });
    }
    if (target.startsWith("!")) {
      const word = target.slice(1).split("^")[0];
      const text = label || (["here", "channel", "everyone"].includes(word) ? `@${word}` : `<${word}>`);
      return el("span", { class: "mention", text: decode(text) });
    }
    const url = decode(target);
    const href = safeHref(url);
    const shown = label ? inline(label) : [document.createTextNode(url)];
    if (!href) return el("span", {}, shown);
    return el("a", { href, target: "_blank", rel: "noopener noreferrer", "data-testid": "link" }, shown);
  }

  const INLINE = new RegExp(
    [
      "`([^`\\n]+)`", // 1 code
      "<([^<>\\n]+)>", // 2 control
      "(?<![\\w*])\\*(?!\\s)([^*\\n]+?)\\*(?![\\w*])", // 3 bold
      "(?<![\\w_])_(?!\\s)([^_\\n]+?)_(?![\\w_])", // 4 italic
      "(?<![\\w~])~(?!\\s)([^~\\n]+?)~(?![\\w~])", // 5 strike
      ":([a-z0-9_+'-]+):", // 6 emoji
    ].join("|"),
    "g",
  );

  function inline(text) {
    const out = [];
    let pos = 0;
    INLINE.lastIndex = 0;
    const matches = [...text.matchAll(INLINE)];
    for (const m of matches) {
      if (m.index > pos) out.push(document.createTextNode(decode(text.slice(pos, m.index))));
      if (m[1] !== undefined) out.push(el("code", { text: decode(m[1]) }));
      else if (m[2] !== undefined) out.push(control(m[2]));
      else if (m[3] !== undefined) out.push(el("b", {}, inline(m[3])));
      else if (m[4] !== undefined) out.push(el("i", {}, inline(m[4])));
      else if (m[5] !== undefined) out.push(el("s", {}, inline(m[5])));
      else if (m[6] !== undefined) {
        const shown = EMOJI[m[6]];
        out.push(shown ? el("span", { class: "emoji", title: `:${m[6]}:`, text: shown }) : document.createTextNode(m[0]));
      }
      pos = m.index + m[0].length;
    }
    if (pos < text.length) out.push(document.createTextNode(decode(text.slice(pos))));
    return out;
  }

  function mrkdwn(text) {
    const container = el("span", { class: "mrkdwn" });
    const parts = text.split(/```/);
    parts.forEach((part, i) => {
      if (i % 2 === 1 && i < parts.length - 1) {
        container.appendChild(el("pre", { text: decode(part.replace(/^\n/, "")) }));
        return;
      }
      if (i % 2 === 1) part = "```" + part; // unbalanced fence: literal
      let quote = null;
      const lines = part.split("\n");
      lines.forEach((line, j) => {
        const quoted = /^(&gt;|>)\s?/.exec(line);
        if (quoted) {
          if (!quote) { quote = el("blockquote"); container.appendChild(quote); }
          else quote.appendChild(el("br"));
          append(quote, inline(line.slice(quoted[0].length)));
          return;
        }
        quote = null;
        append(container, inline(line));
        if (j < lines.length - 1) container.appendChild(el("br"));
      });
    });
    return container;
  }

  function textObject(obj) {
    if (!obj || typeof obj.text !== "string") return el("span");
    if (obj.type === "mrkdwn") return mrkdwn(obj.text);
    const span = el("span", { class: "plain" });
    span.textContent = obj.text.replace(/:([a-z0-9_+'-]+):/g, (m, name) => EMOJI[name] || m);
    return span;
  }

  // ---------------------------------------------------------------- blocks

  function renderBlocks(blocks, ctx) {
    return el("div", { class: "blocks" }, (blocks || []).map((b) => renderBlock(b, ctx)));
  }

  function blockShell(block, extraClass) {
    return el("div", {
      class: `block block-${block.type}${extraClass ? " " + extraClass : ""}`,
      "data-testid": "block",
      "data-block-type": block.type,
      "data-block-id": block.block_id,
    });
  }

  function renderBlock(block, ctx) {
    switch (block.type) {
      case "section": {
        const shell = blockShell(block);
        const main = el("div", { class: "section-main" });
        if (block.text) main.appendChild(el("div", { class: "section-text", "data-testid": "section-text" }, textObject(block.text)));
        if (block.fields) main.appendChild(el("div", { class: "fields" }, block.fields.map((f) => el("div", {}, textObject(f)))));
        shell.appendChild(main);
        if (block.accessory) shell.appendChild(renderElement(block.accessory, block, ctx));
        return shell;
      }
      case "context": {
        const shell = blockShell(block);
        for (const item of block.elements || []) {
          if (item.type === "image") {
            const src = safeHref(item.image_url || "");
            shell.appendChild(src ? el("img", { src, alt: item.alt_text || "" }) : el("span", { text: item.alt_text || "" }));
          } else shell.appendChild(el("span", {}, textObject(item)));
        }
        return shell;
      }
      case "divider": {
        const hr = el("hr", { class: "block block-divider", "data-testid": "block", "data-block-type": "divider", "data-block-id": block.block_id });
        return hr;
      }
      case "header": {
        const shell = blockShell(block);
        shell.appendChild(textObject(block.text));
        return shell;
      }
      case "actions": {
        const shell = blockShell(block);
        for (const element of block.elements || []) shell.appendChild(renderElement(element, block, ctx));
        return shell;
      }
      case "image": {
        const shell = blockShell(block);
        if (block.title) shell.appendChild(el("div", {}, textObject(block.title)));
        const src = safeHref(block.image_url || "");
        shell.appendChild(src ? el("img", { src, alt: block.alt_text || "" }) : el("span", { class: "unsupported", text: `[image: ${block.alt_text || ""}]` }));
        return shell;
      }
      case "rich_text": {
        const shell = blockShell(block);
        shell.appendChild(renderRichText(block.elements || []));
        return shell;
      }
      case "markdown": {
        const shell = blockShell(block, "message-text");
        shell.textContent = block.text || "";
        return shell;
      }
      case "input":
        return renderInput(block, ctx);
      default: {
        const shell = blockShell(block, "unsupported");
        shell.textContent = `[${block.type} block: not rendered by the emulator]`;
        return shell;
      }
    }
  }

  function renderRichText(elements) {
    const out = el("div", { class: "message-text" });
    const run = (items) => (items || []).map((item) => {
      switch (item.type) {
        case "text": {
          let node = document.createTextNode(item.text || "");
          const style = item.style || {};
          if (style.code) node = el("code", {}, node);
          if (style.bold) node = el("b", {}, node);
          if (style.italic) node = el("i", {}, node);
          if (style.strike) node = el("s", {}, node);
          return node;
        }
        case "link": {
          const href = safeHref(item.url || "");
          const label = item.text || item.url || "";
          return href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", "data-testid": "link", text: label }) : document.createTextNode(label);
        }
        case "user": return control(`@${item.user_id}`);
        case "channel": return control(`#${item.channel_id}`);
        case "broadcast": return control(`!${item.range}`);
        case "emoji": return document.createTextNode(emoji(item.name));
        default: return document.createTextNode("");
      }
    });
    for (const section of elements) {
      if (section.type === "rich_text_preformatted") out.appendChild(el("pre", {}, run(section.elements)));
      else if (section.type === "rich_text_quote") out.appendChild(el("blockquote", {}, run(section.elements)));
      else if (section.type === "rich_text_list") {
        const list = el(section.style === "ordered" ? "ol" : "ul");
        for (const item of section.elements || []) list.appendChild(el("li", {}, run(item.elements)));
        out.appendChild(list);
      } else out.appendChild(el("span", {}, run(section.elements)));
    }
    return out;
  }

  function renderElement(element, block, ctx) {
    if (element.type === "button") {
      const cls = `btn${element.style ? " " + element.style : ""}`;
      const button = el("button", {
        type: "button",
        class: cls,
        "data-testid": `button-${element.action_id}`,
        "data-action-id": element.action_id,
        "data-block-id": block.block_id,
        "data-value": element.value,
      }, textObject(element.text));
      button.addEventListener("click", () => onButton(button, element, block, ctx));
      return button;
    }
    if (element.type === "image") {
      const src = safeHref(element.image_url || "");
      return src ? el("img", { src, alt: element.alt_text || "", width: 72, height: 72 }) : el("span");
    }
    const label = element.placeholder ? element.placeholder.text : element.type;
    return el("span", { class: "control-unsupported", title: `${element.type}: not interactive in the emulator`, text: label });
  }

  async function onButton(button, element, block, ctx) {
    if (ctx.surface !== "message") {
      showError(`buttons in a ${ctx.surface} are not wired in the emulator`);
      return;
    }
    if (element.url) window.open(element.url, "_blank", "noopener");
    if (element.confirm && !(await confirmDialog(element.confirm))) return;
    button.disabled = true;
    const answer = await post("/ui/click", {
      user: ui.user, channel: ctx.channel, ts: ctx.ts, action_id: element.action_id, block_id: block.block_id,
    });
    button.disabled = false;
    if (!answer.ok) showError(answer.error || `the bot answered HTTP ${answer.status}`);
  }

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const close = (value) => { overlay.remove(); resolve(value); };
      const overlay = el("div", { class: "overlay", "data-testid": "confirm-dialog" },
        el("div", { class: "modal" },
          el("div", { class: "modal-header" }, el("h2", {}, textObject(confirm.title))),
          el("div", { class: "modal-body" }, textObject(confirm.text)),
          el("div", { class: "modal-footer" },
            el("button", { type: "button", class: "btn", "data-testid": "confirm-no", onclick: () => close(false) }, textObject(confirm.deny || { type: "plain_text", text: "Cancel" })),
            el("button", { type: "button", class: `btn ${confirm.style === "danger" ? "danger" : "primary"}`, "data-testid": "confirm-yes", onclick: () => close(true) }, textObject(confirm.confirm || { type: "plain_text", text: "Yes" })))));
      document.body.appendChild(overlay);
    });
  }

  // ---------------------------------------------------------------- modal

  function draftKey(viewId, blockId, actionId) { return `${viewId}/${blockId}/${actionId}`; }

  function renderInput(block, ctx) {
    const element = block.element || {};
    const errors = (ctx.errors || {});
    const error = errors[block.block_id];
    const shell = el("div", {
      class: `block input-block${error ? " has-error" : ""}`,
      "data-testid": "block", "data-block-type": "input", "data-block-id": block.block_id,
    });
    const inputId = `in-${block.block_id}-${element.action_id}`;
    shell.appendChild(el("label", { for: inputId }, textObject(block.label), block.optional ? el("span", { class: "optional", text: " (optional)" }) : null));
    const textual = ["plain_text_input", "email_text_input", "url_text_input", "number_input"];
    if (textual.includes(element.type)) {
      const key = draftKey(ctx.viewId, block.block_id, element.action_id);
      const attrs = {
        id: inputId,
        "data-testid": "modal-input",
        "data-block-id": block.block_id,
        "data-action-id": element.action_id,
        placeholder: element.placeholder ? element.placeholder.text : null,
        maxlength: element.max_length,
      };
      const input = element.multiline ? el("textarea", attrs) : el("input", { ...attrs, type: element.type === "number_input" ? "number" : "text" });
      const submitted = ((ctx.stateValues || {})[block.block_id] || {})[element.action_id];
      const fallback = submitted && typeof submitted.value === "string" ? submitted.value : element.initial_value || "";
      input.value = key in ui.drafts ? ui.drafts[key] : fallback;
      ui.drafts[key] = input.value;
      input.addEventListener("input", () => { ui.drafts[key] = input.value; });
      shell.appendChild(input);
    } else {
      shell.appendChild(el("div", { class: "control-unsupported", text: `${element.type}: not supported by the emulator` }));
    }
    if (block.hint) shell.appendChild(el("div", { class: "input-hint" }, textObject(block.hint)));
    if (error) shell.appendChild(el("div", { class: "input-error", "data-testid": "modal-error", "data-block-id": block.block_id, text: error }));
    return shell;
  }

  function renderModal() {
    const root = $("modal-root");
    const modal = ui.data && ui.data.modal;
    if (!modal) {
      if (ui.modalKey !== null) { root.replaceChildren(); ui.modalKey = null; }
      return;
    }
    const view = modal.view;
    const key = JSON.stringify([view.id, view.hash, modal.errors, modal.general_error]);
    if (key === ui.modalKey) return;
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.blockId : null;
    ui.modalKey = key;
    const ctx = { surface: "modal", viewId: view.id, errors: modal.errors, stateValues: (view.state || {}).values };
    const submit = view.submit ? el("button", { type: "submit", class: "btn primary", "data-testid": "modal-submit" }, textObject(view.submit)) : null;
    const form = el("form", { class: "modal", "data-testid": "modal", "data-view-id": view.id, "data-callback-id": view.callback_id, role: "dialog", "aria-modal": "true" },
      el("div", { class: "modal-header" },
        el("h2", { "data-testid": "modal-title" }, textObject(view.title)),
        el("button", { type: "button", class: "modal-x", title: "Close", "data-testid": "modal-x", onclick: () => closeModal(view.id) }, "×")),
      el("div", { class: "modal-body" },
        modal.general_error ? el("div", { class: "general-error", "data-testid": "modal-general-error", text: modal.general_error }) : null,
        renderBlocks(view.blocks, ctx)),
      el("div", { class: "modal-footer" },
        el("button", { type: "button", class: "btn", "data-testid": "modal-close", onclick: () => closeModal(view.id) }, textObject(view.close || { type: "plain_text", text: "Cancel" })),
        submit));
    form.addEventListener("submit", (event) => { event.preventDefault(); submitModal(view, form); });
    root.replaceChildren(el("div", { class: "overlay", "data-testid": "modal-overlay" }, form));
    const target = (focused && form.querySelector(`[data-block-id="${CSS.escape(focused)}"][data-testid="modal-input"]`)) || form.querySelector("[data-testid=modal-input]");
    if (target) target.focus();
  }

  async function submitModal(view, form) {
    const values = {};
    for (const input of form.querySelectorAll("[data-testid=modal-input]")) {
      const blockId = input.dataset.blockId;
      values[blockId] = values[blockId] || {};
      values[blockId][input.dataset.actionId] = input.value;
    }
    const button = form.querySelector("[data-testid=modal-submit]");
    if (button) button.disabled = true;
    const answer = await post("/ui/submit", { user: ui.user, view_id: view.id, values });
    if (button) button.disabled = false;
    if (answer.error) showError(answer.error);
  }

  async function closeModal(viewId) {
    const answer = await post("/ui/close", { user: ui.user, view_id: viewId });
    if (!answer.ok) showError(answer.error || "could not close the modal");
  }

  // ---------------------------------------------------------------- messages

  function avatar(userId, sender) {
    const user = userById(userId);
    const name = sender === "slackbot" ? "Slackbot" : user ? user.name : userId;
    const color = sender === "slackbot" ? "#2eb67d" : user ? user.color : "#888";
    return el("div", { class: "avatar", style: `background:${/^#[0-9a-fA-F]{3,8}$/.test(color) ? color : "#888"}`, text: name.slice(0, 1).toUpperCase() });
  }

  function renderMessage(message, ctx) {
    const ephemeral = !!message.is_ephemeral;
    const slackbot = message.user === "USLACKBOT";
    const user = userById(message.user);
    const name = slackbot ? "Slackbot" : user ? (user.is_bot ? user.name : user.real_name || user.name) : message.user;
    const node = el("div", {
      class: `message${ephemeral ? " ephemeral" : ""}${ui.focusTs === message.ts ? " focused" : ""}`,
      "data-testid": ephemeral ? "ephemeral" : "message",
      "data-ts": message.ts,
      "data-channel": ctx.channel,
      "data-user": message.user,
      "data-thread-ts": message.thread_ts,
      "data-bot": message.bot_id ? "true" : null,
      id: `m-${message.ts}`,
    });
    node.appendChild(avatar(message.user, slackbot ? "slackbot" : null));
    const body = el("div", { class: "message-body" });
    if (ephemeral) body.appendChild(el("div", { class: "ephemeral-label", "data-testid": "ephemeral-label", text: "👁 Only visible to you" }));
    body.appendChild(el("div", { class: "message-header" },
      el("span", { class: "message-author", "data-testid": "message-author", text: name }),
      message.bot_id ? el("span", { class: "app-badge", text: "APP" }) : null,
      el("span", { class: "message-time", title: message.ts, text: timeOf(message.ts) }),
      message.edited ? el("span", { class: "message-edited", "data-testid": "message-edited", text: "(edited)" }) : null));
    const msgCtx = { surface: "message", channel: ctx.channel, ts: message.ts, ephemeral };
    const useBlocks = message.bot_id || ephemeral ? message.blocks && message.blocks.length : false;
    if (useBlocks) body.appendChild(renderBlocks(message.blocks, msgCtx));
    else body.appendChild(el("div", { class: "message-text", "data-testid": "message-text" }, mrkdwn(message.text || "")));
    if (message.reactions && message.reactions.length) {
      body.appendChild(el("div", { class: "reactions" }, message.reactions.map((r) => el("span", {
        class: `reaction${r.users.includes(ui.user) ? " mine" : ""}`,
        "data-testid": "reaction", "data-name": r.name, "data-count": r.count,
        title: r.users.map((id) => (userById(id) || { name: id }).name).join(", ") + ` reacted with :${r.name}:`,
      }, emoji(r.name), el("span", { text: String(r.count) })))));
    }
    if (ctx.replies !== undefined) {
      const thread = el("div", { class: "thread", "data-testid": "thread", "data-thread-ts": message.ts });
      if (ctx.replies.length) {
        const count = ctx.replies.filter((r) => !r.is_ephemeral).length;
        if (count) thread.appendChild(el("div", { class: "thread-count", text: `${count} ${count === 1 ? "reply" : "replies"}` }));
        for (const reply of ctx.replies) thread.appendChild(renderMessage(reply, { channel: ctx.channel }));
        body.appendChild(thread);
      }
      body.appendChild(el("button", {
        type: "button", class: "reply-link", "data-testid": "thread-reply-button", "data-thread-ts": message.ts,
        onclick: () => startThread(ctx.channel, message.ts),
        text: ctx.replies.length ? "Reply…" : "Reply in thread",
      }));
    }
    node.appendChild(body);
    return node;
  }

  function byTs(a, b) { return a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0; }

  function renderMessages() {
    const box = $("messages");
    const chan = channelById(ui.channel);
    if (!chan) { box.replaceChildren(el("div", { class: "empty", text: "No channel." })); return; }
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    const ephemerals = (ui.data.ephemerals || []).filter((e) => e.channel === chan.id);
    const tops = (ui.data.messages[chan.id] || []).map((m) => ({ ...m }));
    const items = [...tops, ...ephemerals.filter((e) => !e.thread_ts || !tops.some((m) => m.ts === e.thread_ts))].sort(byTs);
    const nodes = items.map((m) => {
      if (m.is_ephemeral) return renderMessage(m, { channel: chan.id });
      const replies = [...(m.replies || []), ...ephemerals.filter((e) => e.thread_ts === m.ts)].sort(byTs);
      return renderMessage(m, { channel: chan.id, replies });
    });
    if (!nodes.length) nodes.push(el("div", { class: "empty", "data-testid": "empty-channel", text: `This is the very beginning of ${chan.label}. Mention @${ui.data.bot.name} to ask for a change.` }));
    box.replaceChildren(...nodes);
    if (ui.focusTs && !ui.scrolledOnce) {
      const target = document.getElementById(`m-${ui.focusTs}`);
      if (target) { target.scrollIntoView({ block: "center" }); ui.scrolledOnce = true; return; }
    }
    if (nearBottom || !ui.scrolledOnce) { box.scrollTop = box.scrollHeight; ui.scrolledOnce = true; }
  }

  function renderHome() {
    const box = $("home");
    const home = ui.data.home;
    const problem = ui.homeError ? el("div", { class: "banner", "data-testid": "home-error", text: ui.homeError }) : null;
    if (!home) {
      box.replaceChildren(problem || "", el("div", { class: "empty", "data-testid": "home-empty", text: `${ui.data.bot.name} has not published a Home tab for you yet.` }));
      return;
    }
    box.replaceChildren(problem || "", el("div", { class: "home-blocks" }, renderBlocks(home.blocks, { surface: "home", viewId: home.id })));
  }

  // ---------------------------------------------------------------- chrome

  function renderSidebar() {
    const data = ui.data;
    $("team-name").textContent = data.team.name;
    const link = (chan) => el("a", {
      class: ui.tab === "channel" && chan.id === ui.channel ? "active" : "",
      "data-testid": "channel-link", "data-channel-id": chan.id,
      onclick: () => switchChannel(chan.id), text: chan.is_im ? chan.label : `${chan.is_private ? "🔒 " : "# "}${chan.name}`,
    });
    $("channels").replaceChildren(...data.channels.filter((c) => !c.is_im).map(link));
    $("dms").replaceChildren(...data.channels.filter((c) => c.is_im).map(link));
    $("apps").replaceChildren(el("a", {
      class: ui.tab === "home" ? "active" : "", "data-testid": "home-tab",
      onclick: () => switchHome(), text: `${data.bot.name} · Home`,
    }));
    const select = $("user-select");
    const people = data.users.filter((u) => !u.is_bot);
    if (select.options.length !== people.length || [...select.options].some((o, i) => o.value !== people[i].id)) {
      select.replaceChildren(...people.map((u) => el("option", { value: u.id, text: `${u.real_name} (@${u.name})` })));
    }
    select.value = ui.user;
  }

  function renderHeader() {
    const data = ui.data;
    const chan = channelById(ui.channel);
    $("channel-title").textContent = ui.tab === "home" ? `${data.bot.name} · Home` : chan ? chan.label : "";
    $("channel-topic").textContent = ui.tab === "home" ? "" : chan ? chan.topic : "";
    const badge = $("warnings-badge");
    badge.hidden = !data.warnings.length;
    badge.textContent = `⚠ ${data.warnings.length} warning${data.warnings.length === 1 ? "" : "s"}`;
    const list = $("warnings");
    list.hidden = !ui.warningsOpen || !data.warnings.length;
    list.replaceChildren(el("ul", {}, data.warnings.map((w) => el("li", { "data-testid": "warning", text: w }))));
    const banner = $("banner");
    banner.hidden = data.bot_connected;
    banner.textContent = "No bot connected (emu.bot_url is not set): messages are stored, nothing is delivered.";
    $("messages").hidden = ui.tab !== "channel";
    $("home").hidden = ui.tab !== "home";
    $("composer").hidden = ui.tab !== "channel";
    const chip = $("composer-thread");
    chip.hidden = !ui.thread || ui.thread.channel !== ui.channel;
    const input = $("composer-input");
    input.placeholder = chip.hidden
      ? `Message ${chan ? chan.label : ""} — try “@${data.bot.name} in acme/api: make the retry limit configurable” or “/agents status”`
      : "Reply in thread…";
  }

  function render() {
    if (!ui.data) return;
    if (!ui.channel || !channelById(ui.channel)) ui.channel = (ui.data.channels.find((c) => !c.is_im) || ui.data.channels[0] || {}).id;
    renderSidebar();
    renderHeader();
    if (ui.tab === "channel") renderMessages();
    else renderHome();
    renderModal();
  }

  function showError(text) {
    $("composer-error").textContent = text || "";
  }

  function setOnline(online) {
    const status = $("status");
    status.textContent = online ? `live · ${location.host}` : "emulator unreachable — retrying…";
    status.classList.toggle("offline", !online);
  }

  function switchChannel(id) {
    showError("");
    ui.tab = "channel";
    ui.channel = id;
    ui.thread = null;
    ui.scrolledOnce = false;
    render();
  }

  async function switchHome() {
    ui.tab = "home";
    render();
    ui.homeError = null;
    const answer = await post("/ui/home", { user: ui.user });
    if (!answer.ok) ui.homeError = answer.error || "The bot did not accept app_home_opened (see the warnings).";
    if (ui.tab === "home") renderHome();
  }

  function startThread(channel, ts) {
    ui.thread = { channel, ts };
    renderHeader();
    $("composer-input").focus();
  }

  // ---------------------------------------------------------------- polling

  function schedulePoll(delay) {
    clearTimeout(ui.pollTimer);
    ui.pollTimer = setTimeout(poll, delay);
  }

  async function poll() {
    try {
      let url = `/ui/state?user=${encodeURIComponent(ui.user || "")}`;
      if (ui.version !== null) url += `&since=${ui.version}`;
      const response = await fetch(url, { cache: "no-store" });
      const data = await response.json();
      setOnline(true);
      if (!data.unchanged) {
        ui.data = data;
        markLoaded();
        ui.version = data.version;
        if (!ui.user) ui.user = data.me;
        render();
      }
    } catch (e) {
      setOnline(false);
    }
    schedulePoll(POLL_MS);
  }

  // ---------------------------------------------------------------- composer

  async function send() {
    const input = $("composer-input");
    const text = input.value;
    if (!text.trim()) return;
    if (!ui.data) {
      showError("connecting to the emulator… your message goes out once it answers");
      await loaded;
      showError("");
    }
    const inThread = ui.thread && ui.thread.channel === ui.channel ? ui.thread.ts : null;
    const button = $("composer-send");
    button.disabled = true;
    showError("");
    const answer = await post("/ui/post", { user: ui.user, channel: ui.channel, text, thread_ts: inThread });
    button.disabled = false;
    if (answer.ok || answer.error === "unknown_command") {
      input.value = "";
      ui.scrolledOnce = false;
    }
    if (!answer.ok && answer.error !== "unknown_command") showError(answer.error || "could not send");
    input.focus();
  }

  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
    if (event.key === "Escape") { ui.thread = null; renderHeader(); }
  });
  $("composer-thread-cancel").addEventListener("click", () => { ui.thread = null; renderHeader(); });
  $("user-select").addEventListener("change", (event) => {
    ui.user = event.target.value;
    ui.version = null;
    ui.modalKey = null;
    schedulePoll(0);
  });
  $("warnings-badge").addEventListener("click", () => { ui.warningsOpen = !ui.warningsOpen; renderHeader(); });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.data && ui.data.modal) closeModal(ui.data.modal.view.id);
  });

  window.slackEmulator = { ui, mrkdwn }; // for debugging and browser tests
  poll();
})();
