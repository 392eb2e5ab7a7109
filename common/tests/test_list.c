#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "common/list.h"

typedef struct node {
    int v;
    struct node *nprev, *nnext;
} node;

/* Walks head forward and checks every back link; returns the values in order as digits. */
static int walk(node *head)
{
    int acc = 0;
    node *prev = NULL;
    for (node *n = head; n; prev = n, n = n->nnext) {
        assert_ptr_equal(n->nprev, prev);
        acc = acc * 10 + n->v;
    }
    return acc;
}

static void push_and_unlink_everywhere(void **s)
{
    (void)s;
    node n[4] = {{1, &n[3], &n[2]}, {2, NULL, NULL}, {3, NULL, NULL}, {4, NULL, NULL}};
    node *head = NULL;
    for (int i = 0; i < 4; i++)
        LIST_PUSH(head, &n[i], nprev, nnext); /* stale links in n[0] are overwritten */
    assert_int_equal(walk(head), 4321);
    LIST_UNLINK(head, &n[2], nprev, nnext); /* middle */
    assert_int_equal(walk(head), 421);
    assert_null(n[2].nprev);
    assert_null(n[2].nnext);
    LIST_UNLINK(head, &n[3], nprev, nnext); /* head */
    assert_int_equal(walk(head), 21);
    assert_ptr_equal(head, &n[1]);
    LIST_UNLINK(head, &n[0], nprev, nnext); /* tail */
    assert_int_equal(walk(head), 2);
    LIST_UNLINK(head, &n[1], nprev, nnext); /* the last one */
    assert_null(head);
    LIST_PUSH(head, &n[2], nprev, nnext);
    assert_int_equal(walk(head), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_and_unlink_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
