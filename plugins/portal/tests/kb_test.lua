-- The portal's knowledge base (kb.c) through crm: the Markdown renderer against hostile input,
-- and the rules an article is written by (slug, language, size, folded search text).

local render = crm.portal.kb_render

-- What must never reach a page from an article's body: a tag that runs or embeds something,
-- an event handler attribute, or an address with a scheme that runs or smuggles content. (As
-- escaped text, "javascript:" is only words.)
local function assert_safe(html, what)
  local low = html:lower()
  for _, bad in ipairs({"<script", "<iframe", "<svg", "<style", "<object", "<embed", "<form",
                        "=\"javascript:", "=\"vbscript:", "=\"data:", "=\"file:"}) do
    assert_true(not low:find(bad, 1, true),
                what .. ": " .. bad .. " reached the HTML: " .. html)
  end
  for tag in low:gmatch("<[^>]*>") do
    assert_true(not tag:find("%son%a+%s*="), what .. ": an event handler in " .. tag)
    local href = tag:match('href="([^"]*)"') or tag:match('src="([^"]*)"')
    if href and href ~= "" then
      assert_true(href:match("^https?://") or href:match("^mailto:") or href:match("^[/#?]"),
                  what .. ": address " .. href)
    end
  end
end

test("Markdown keeps headings, lists, links, code and emphasis", function()
  local html = render("# Title\n\n## Sub\n\n- one\n- two\n\n1. first\n\n" ..
                      "[docs](https://example.com/docs?a=1&b=2) and [rel](/portal/faq#top) " ..
                      "and <mailto:help@example.com>\n\n`x < y` and *em* **strong**\n\n" ..
                      "```lua\nprint('<b>')\n```\n")
  assert_true(html:find("<h1>Title</h1>", 1, true), html)
  assert_true(html:find("<h2>Sub</h2>", 1, true), html)
  assert_true(html:find("<ul>\n<li>one</li>\n<li>two</li>\n</ul>", 1, true), html)
  assert_true(html:find("<ol>\n<li>first</li>\n</ol>", 1, true), html)
  assert_true(html:find('<a href="https://example.com/docs?a=1&amp;b=2">docs</a>', 1, true), html)
  assert_true(html:find('<a href="/portal/faq#top">rel</a>', 1, true), html)
  assert_true(html:find('<a href="mailto:help@example.com">', 1, true), html)
  assert_true(html:find("<code>x &lt; y</code>", 1, true), html)
  assert_true(html:find("<em>em</em> <strong>strong</strong>", 1, true), html)
  assert_true(html:find('<pre><code class="language-lua">print(\'&lt;b&gt;\')', 1, true), html)
end)

test("raw HTML, script and event handlers never reach the HTML", function()
  local cases = {
    "<script>alert(1)</script>",
    "hello <script>alert(1)</script> world",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<iframe src=\"https://evil.example\"></iframe>",
    "<svg onload=alert(1)>",
    "<style>body{display:none}</style>",
    "<div onclick=\"alert(1)\">click</div>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
  }
  for _, md in ipairs(cases) do
    local html = render(md)
    assert_safe(html, md)
    -- Escaped, the text may stay; as a tag, never.
    assert_true(not html:find("<script", 1, true), md .. " → " .. html)
  end
  assert_eq(render("<script>alert(1)</script>"), "<!-- raw HTML omitted -->\n")
  -- Entities stay text: the tag they spell is shown, not made.
  assert_eq(render("&lt;script&gt;"), "<p>&lt;script&gt;</p>\n")
end)

test("links and images keep only http(s), mailto and relative addresses", function()
  local cases = {
    "[x](javascript:alert(1))", "[x](JavaScript:alert(1))", "[x](java\tscript:alert(1))",
    "[x]( javascript:alert(1))", "[x](&#106;avascript:alert(1))", "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![](data:image/png;base64,iVBORw0KGgo=)", "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    "[x](file:///etc/passwd)", "<javascript:alert(1)>", "[x][r]\n\n[r]: javascript:alert(1)",
  }
  for _, md in ipairs(cases) do
    local html = render(md)
    assert_safe(html, md)
  end
  assert_eq(render("[x](javascript:alert(1))"), '<p><a href="">x</a></p>\n')
  assert_eq(render("![pic](data:image/png;base64,AAAA)"), '<p><img src="" alt="pic" /></p>\n')
  assert_eq(render("![pic](https://example.com/a.png)"),
            '<p><img src="https://example.com/a.png" alt="pic" /></p>\n')
  -- A title attribute cannot break out of its quotes.
  local t = render('[x](https://e.com "a\\" onmouseover=\\"alert(1)")')
  assert_true(t:find('title="a&quot; onmouseover=&quot;alert(1)"', 1, true), t)
end)

test("pathological input renders in milliseconds", function()
  local bombs = {
    string.rep("*a **", 10000), string.rep("[", 50000), string.rep("> ", 20000) .. "x",
    string.rep("_", 60000), string.rep("[a](", 10000), string.rep("<a ", 20000),
    string.rep("- ", 20000) .. "x", string.rep("`", 60000), string.rep("![[](", 10000),
  }
  for i, md in ipairs(bombs) do
    local t0 = os.clock()
    local html = render(md)
    local dt = os.clock() - t0
    assert_true(#html > 0, "bomb " .. i .. " rendered nothing")
    assert_true(dt < 0.5, string.format("bomb %d took %.3f s", i, dt))
  end
  -- Longer than an article may be: refused, not rendered.
  assert_error(function() render(string.rep("a", 64 * 1024 + 1)) end, "at most 65536")
  assert_error(function() render(42) end, "one text argument")
end)

test("an article gets a slug, a language and folded search text", function()
  local a = crm.create("article", {title = "How do I reset my password?", body = "Go to *Settings*."})
  assert_eq(a.slug, "how-do-i-reset-my-password")
  assert_eq(a.language, "en")
  assert_eq(a.published, false)
  assert_eq(a.helpful_yes, 0)
  assert_eq(a.search_text, "how do i reset my password? go to *settings*.")
  -- Persian: no ASCII letters, so a made-up slug; Arabic letter forms folded to one.
  local f = crm.create("article", {title = "كيف پول", body = "شارژ", language = "fa"})
  assert_true(f.slug:match("^article%-%x%x%x%x%x%x%x%x$"), f.slug)
  -- The same title again makes the same slug: a conflict, not a silent copy.
  assert_error(function() crm.create("article", {title = "كيف پول"}) end, "slug")
  assert_eq(f.search_text, "کیف پول شارژ")
  -- Kept in step with the body; the revision date moves with the content, not with a vote.
  local first = a.revised_at
  assert_eq(first, a.created_at)
  crm.clock.advance("1h")
  a = crm.update("article", a.id, {helpful_yes = 3})
  assert_eq(a.revised_at, first)
  a = crm.update("article", a.id, {body = "Open the Account page"})
  assert_true(a.search_text:find("open the account page", 1, true), a.search_text)
  assert_eq(a.revised_at, a.updated_at)
  assert_true(a.revised_at ~= first, "revised_at did not move with the body")
  -- A slug given is kept, and must be one.
  local s = crm.create("article", {title = "X", slug = "shipping-times"})
  assert_eq(s.slug, "shipping-times")
  assert_error(function() crm.create("article", {title = "Y", slug = "Bad Slug!"}) end,
               "article.slug: \"Bad Slug!\" must be")
  assert_error(function() crm.create("article", {title = "Z", slug = "shipping-times"}) end,
               "slug")
  assert_error(function() crm.create("article", {title = "Z", language = "English"}) end,
               "article.language: \"English\" is not a language tag")
  assert_error(function() crm.create("article", {title = "Z", body = string.rep("x", 65537)}) end,
               "article.body: 65537 bytes, at most 65536")
  assert_error(function() crm.create("article", {body = "no title"}) end, "title")
  -- Nothing of a refused write was stored.
  assert_eq(crm.count("article"), 3)
end)
