"""conventions"""
