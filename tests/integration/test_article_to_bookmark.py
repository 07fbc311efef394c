"""Integration: rules/article-to-bookmark.lua turns published articles into
Linkwarden links, through a real broker and the Linkwarden stand-in."""

import copy
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "helpers"))
import harness  # noqa: E402

TOPIC = "kompose/news/article/published"
AUTH = "Bearer " + harness.LINKWARDEN_TOKEN


def article(url, **data):
    """The sample article event with published_url and other fields
    replaced."""
    event = copy.deepcopy(harness.sample(TOPIC))
    event["data"]["published_url"] = url
    event["data"].update(data)
    return event


def links(reqs, url=None):
    return [r for r in reqs if r["path"] == "/api/v1/links"
            and (url is None or (r["json"] or {}).get("url") == url)]


def has_links(n, url=None):
    return lambda reqs: len(links(reqs, url)) >= n


def calls(reqs):
    return [(r["method"], r["path"]) for r in reqs]


class ArticleToBookmark(unittest.TestCase):

    def test_article_becomes_one_link_in_a_created_collection(self):
        with harness.Rig() as rig:
            rig.publish_json(TOPIC, harness.sample(TOPIC))
            reqs = rig.wait_requests(has_links(1), what="the link")
            self.assertEqual(calls(reqs), [
                ("GET", "/api/v1/collections"),
                ("POST", "/api/v1/collections"),
                ("POST", "/api/v1/links")])
            for r in reqs:
                self.assertEqual(r["headers"].get("authorization"), AUTH)
                self.assertNotIn(harness.LINKWARDEN_TOKEN, r["path"])
            for r in reqs[1:]:
                self.assertTrue(r["headers"].get("content-type", "")
                                .startswith("application/json"))
            self.assertEqual(reqs[1]["json"], {"name": "Published Articles"})
            created = [c["id"] for c in rig.http.collections()
                       if c["name"] == "Published Articles"]
            self.assertEqual(len(created), 1)
            self.assertEqual(reqs[2]["json"], {
                "url": "https://news.example.com/new-blog-post",
                "name": "New Blog Post",
                "description": "Post excerpt...",
                "tags": [{"name": "docker"}, {"name": "devops"}],
                "collection": {"id": created[0]}})
            self.assertEqual(reqs[2]["status"], 200)
            rig.wait_log("article-to-bookmark", "bookmarked "
                         "https://news.example.com/new-blog-post")
            self.assertNotIn(harness.LINKWARDEN_TOKEN,
                             rig.daemon.log_text())
            self.assertEqual(rig.error_lines(), [])

    def test_existing_collection_is_looked_up_once(self):
        existing = [{"id": 1, "name": "Unorganized"},
                    {"id": 42, "name": "Press"}]
        with harness.Rig(env={"LINKWARDEN_COLLECTION": "Press"},
                         collections=existing) as rig:
            rig.publish_json(TOPIC, article("https://a.example/1"))
            rig.wait_requests(has_links(1), what="the first link")
            rig.publish_json(TOPIC, article("https://a.example/2"))
            reqs = rig.wait_requests(has_links(2), what="the second link")
            self.assertEqual(calls(reqs), [
                ("GET", "/api/v1/collections"),
                ("POST", "/api/v1/links"),
                ("POST", "/api/v1/links")])
            for r in links(reqs):
                self.assertEqual(r["json"]["collection"], {"id": 42})

    def test_same_article_twice_makes_one_link(self):
        with harness.Rig() as rig:
            # Back to back: the second copy arrives while the collection
            # lookup of the first is still in flight.
            rig.publish_json(TOPIC, article("https://a.example/twice"))
            rig.publish_json(TOPIC, article("https://a.example/twice"))
            rig.publish_json(TOPIC, article("https://a.example/other"))
            rig.wait_requests(has_links(1, "https://a.example/other"),
                              what="the link of the later article")
            rig.wait_requests(has_links(1, "https://a.example/twice"),
                              what="the link of the doubled article")
            # A redelivery long after the first one.
            rig.publish_json(TOPIC, article("https://a.example/twice"))
            rig.publish_json(TOPIC, article("https://a.example/third"))
            reqs = rig.wait_requests(
                has_links(1, "https://a.example/third"),
                what="the link of the last article")
            self.assertEqual(len(links(reqs, "https://a.example/twice")), 1)
            self.assertEqual(len(links(reqs)), 3)
            self.assertEqual(calls(reqs).count(
                ("GET", "/api/v1/collections")), 1)
            rig.wait_log("article-to-bookmark",
                         "already bookmarked https://a.example/twice",
                         count=2)

    def test_long_fields_are_cut_to_linkwarden_limits(self):
        title = "\u00e9" * 3000
        excerpt = "x" * 2047 + "\U0001f600" + "tail"
        tags = ["t" * 60, "ok", "", 7]
        with harness.Rig() as rig:
            rig.publish_json(TOPIC, article("https://a.example/long",
                                            title=title, excerpt=excerpt,
                                            tags=tags))
            reqs = rig.wait_requests(has_links(1), what="the link")
            link = links(reqs)[0]
            self.assertEqual(link["status"], 200, link["body"][:300])
            self.assertEqual(link["json"]["name"], "\u00e9" * 2048)
            # The emoji takes two UTF-16 units: it would end at 2049.
            self.assertEqual(link["json"]["description"], "x" * 2047)
            self.assertEqual(link["json"]["tags"],
                             [{"name": "t" * 50}, {"name": "ok"}])

    def test_article_without_tags_or_url(self):
        no_url = article("x")
        del no_url["data"]["published_url"]
        no_tags = article("https://a.example/no-tags")
        del no_tags["data"]["tags"]
        with harness.Rig() as rig:
            rig.publish_json(TOPIC, no_url)
            rig.publish_json(TOPIC, no_tags)
            reqs = rig.wait_requests(has_links(1), what="the link")
            self.assertEqual(len(links(reqs)), 1)
            self.assertNotIn("tags", links(reqs)[0]["json"])
            rig.wait_log("article-to-bookmark", "skipped article: "
                         "event has no data.published_url")

    def test_failed_link_is_created_on_redelivery(self):
        with harness.Rig() as rig:
            rig.http.answer("/api/v1/links", 400,
                            {"response": "stand-in refuses"}, times=1)
            rig.publish_json(TOPIC, article("https://a.example/retry"))
            rig.wait_requests(has_links(1), what="the refused link")
            rig.wait_log("article-to-bookmark", "status 400")
            rig.publish_json(TOPIC, article("https://a.example/retry"))
            reqs = rig.wait_requests(has_links(2), what="the second try")
            self.assertEqual([r["status"] for r in links(reqs)], [400, 200])

    def test_failed_lookup_is_tried_again_by_the_next_event(self):
        with harness.Rig() as rig:
            rig.http.answer("/api/v1/collections", 401,
                            {"response": "You must be logged in."},
                            times=1, method="GET")
            rig.publish_json(TOPIC, article("https://a.example/first"))
            rig.wait_log("article-to-bookmark", "status 401")
            rig.publish_json(TOPIC, article("https://a.example/second"))
            reqs = rig.wait_requests(has_links(1), what="the link")
            self.assertEqual(calls(reqs), [
                ("GET", "/api/v1/collections"),
                ("GET", "/api/v1/collections"),
                ("POST", "/api/v1/collections"),
                ("POST", "/api/v1/links")])
            self.assertEqual(links(reqs)[0]["json"]["url"],
                             "https://a.example/second")


if __name__ == "__main__":
    unittest.main()
